//! Code generation: parse -> model -> validate -> expand. Expansion never fails.

mod client;
mod ops;
mod skeleton;
mod trait_;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemTrait, Pat, TraitItem};

use crate::attr::{self, RemoteArgs};
use crate::errors::Errors;
use crate::model::Interface;

/// The whole `#[remote]` attribute, on `proc_macro2` tokens so tests can call it.
pub(crate) fn remote(args: TokenStream, item: ItemTrait) -> TokenStream {
    let mut errors = Errors::default();
    let args = RemoteArgs::parse(args, &mut errors);
    let iface = Interface::from_syn(&item, args, &mut errors);
    iface.validate(&mut errors);
    match errors.finish() {
        Ok(()) => expand(&iface),
        Err(err) => {
            // Keep the user's trait (minus our own attributes) so one precise error does not cascade
            // into "cannot find trait" or "cannot find attribute `op`".
            let item = strip_our_attrs(item);
            let err = err.into_compile_error();
            quote!(#item #err)
        }
    }
}

fn expand(iface: &Interface<'_>) -> TokenStream {
    let the_trait = trait_::expand(iface);
    let ops = ops::expand(iface);
    let client = client::expand(iface);
    let skeleton = skeleton::expand(iface);
    quote! {
        #the_trait
        #ops
        #client
        #skeleton
    }
}

/// The user's trait as it can compile next to the errors: without our attributes, and with argument
/// patterns (already reported) replaced by `_`, which a method without a body accepts.
fn strip_our_attrs(mut item: ItemTrait) -> ItemTrait {
    for it in &mut item.items {
        if let TraitItem::Fn(f) = it {
            f.attrs.retain(|a| !attr::is_ours(a));
            if f.default.is_none() {
                for input in &mut f.sig.inputs {
                    if let FnArg::Typed(pt) = input
                        && !matches!(&*pt.pat, Pat::Ident(_) | Pat::Wild(_))
                    {
                        *pt.pat = Pat::Wild(syn::PatWild {
                            attrs: Vec::new(),
                            underscore_token: syn::Token![_](pt.pat.span()),
                        });
                    }
                }
            }
        }
    }
    item
}

/// A generated local variable: `mixed_site` hygiene keeps it apart from the user's names.
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}
