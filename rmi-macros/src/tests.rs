//! Snapshot of the expansion of a representative trait: every change to generated code shows up in
//! review as a diff of `snapshots/*.expanded.rs`. Refresh with `UPDATE_EXPECT=1 cargo test -p rmi-macros`.

use proc_macro2::TokenStream;

fn expand_file(source: &str) -> String {
    let file: syn::File = syn::parse_str(source).expect("snapshot input parses");
    let mut out = TokenStream::new();
    for item in file.items {
        let syn::Item::Trait(mut item) = item else { panic!("snapshot inputs hold traits only") };
        let pos = item.attrs.iter().position(|a| a.path().is_ident("remote")).expect("a #[remote] trait");
        let attr = item.attrs.remove(pos);
        let args = match attr.meta {
            syn::Meta::Path(_) => TokenStream::new(),
            syn::Meta::List(list) => list.tokens,
            syn::Meta::NameValue(_) => panic!("unexpected #[remote = ...]"),
        };
        out.extend(crate::expand::remote(args, item));
    }
    let file: syn::File = syn::parse2(out).expect("expansion parses as a file");
    prettyplease::unparse(&file)
}

#[test]
fn calculator_expansion() {
    let expanded = expand_file(include_str!("../snapshots/calculator.rs"));
    expect_test::expect_file!["../snapshots/calculator.expanded.rs"].assert_eq(&expanded);
}

#[test]
fn camel_case_names_operations() {
    assert_eq!(crate::model::camel_case("get_value"), "GetValue");
    assert_eq!(crate::model::camel_case("f"), "F");
    assert_eq!(crate::model::camel_case("getValue"), "GetValue");
}

#[test]
fn only_vec_of_u8_as_written_travels_as_a_byte_string() {
    let is_byte_vec = |src: &str| crate::model::is_byte_vec(&syn::parse_str(src).expect("a type"));
    for yes in [
        "Vec<u8>",
        "std::vec::Vec<u8>",
        "::std::vec::Vec<u8>",
        "alloc::vec::Vec<u8>",
        "::alloc::vec::Vec<u8>",
    ] {
        assert!(is_byte_vec(yes), "{yes}");
    }
    for no in [
        "Vec<i8>",
        "Vec<u16>",
        "Vec<Vec<u8>>",
        "Option<Vec<u8>>",
        "[u8; 4]",
        "&[u8]",
        "Bytes",
        "::Vec<u8>",
        "my::Vec<u8>",
        "std::vec::Vec<::u8>",
        "Vec<u8, Global>",
        "<T as Tr>::Vec<u8>",
        "std::vec::Vec<my::u8>",
    ] {
        assert!(!is_byte_vec(no), "{no}");
    }
}
