//! The user's trait, re-emitted with each `async fn` desugared to a `Send` future.

use proc_macro2::TokenStream;
use quote::quote;

use crate::attr;
use crate::model::{Interface, Output};

pub(super) fn expand(iface: &Interface<'_>) -> TokenStream {
    let rt = &iface.krate;
    let item = iface.original;
    let attrs = &item.attrs;
    let vis = &item.vis;
    let ident = &item.ident;
    let colon = &item.colon_token;
    let supertraits = &item.supertraits;
    let methods = iface.methods.iter().map(|m| {
        let attrs = m.original.attrs.iter().filter(|a| !attr::is_ours(a));
        let name = m.ident;
        let args = m.args.iter().map(|a| {
            let (ident, ty) = (a.ident, a.ty);
            quote!(#ident: #ty)
        });
        let ret = match &m.output {
            Output::Unit => quote!(()),
            Output::Value(ty) | Output::Result { whole: ty, .. } => quote!(#ty),
        };
        quote! {
            #(#attrs)*
            fn #name(&self, #(#args),*)
                -> impl #rt::__private::Future<Output = #ret> + #rt::__private::Send;
        }
    });
    quote! {
        #(#attrs)*
        #vis trait #ident #colon #supertraits {
            #(#methods)*
        }
    }
}
