use proc_macro::TokenStream;
/// x
#[proc_macro_attribute]
pub fn remote(_a: TokenStream, i: TokenStream) -> TokenStream {
    i
}
