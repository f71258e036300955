//! `enum {Trait}Op`: one variant per method, its operation id, and the interface descriptor.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::attr::SemanticsAttr;
use crate::model::Interface;

pub(super) fn expand(iface: &Interface<'_>) -> TokenStream {
    let rt = &iface.krate;
    let vis = &iface.original.vis;
    let trait_ident = &iface.original.ident;
    let ops = iface.item_ident("Op");
    let name = &iface.name;
    let id = Literal::u64_suffixed(iface.id);
    let version = Literal::u32_suffixed(iface.version);

    let variants: Vec<_> = iface.methods.iter().map(|m| &m.variant).collect();
    let names: Vec<_> = iface.methods.iter().map(|m| m.name()).collect();
    let ids: Vec<_> = iface.methods.iter().map(|m| Literal::u32_suffixed(m.op)).collect();
    let descriptors = iface.methods.iter().zip(&ids).map(|(m, id)| {
        let name = m.name();
        let semantics = m.semantics.map(|s| {
            let variant = match s {
                SemanticsAttr::Oneway => quote!(Maybe),
                SemanticsAttr::Idempotent => quote!(AtLeastOnce),
            };
            quote!(.with_semantics(#rt::__private::Semantics::#variant))
        });
        let timeout = m.timeout.map(|t| {
            let (secs, nanos) = (Literal::u64_suffixed(t.as_secs()), Literal::u32_suffixed(t.subsec_nanos()));
            quote!(.with_timeout(#rt::__private::Duration::new(#secs, #nanos)))
        });
        quote! {
            #rt::__private::MethodDescriptor::new(#name, #rt::__private::OpId(#id))#semantics #timeout
        }
    });
    // Variants are numbered in declaration order, like the descriptor's methods.
    let descriptor_body = if iface.methods.is_empty() {
        quote!(match self {})
    } else {
        quote!(&Self::DESCRIPTOR.methods[self as usize])
    };
    let variant_docs = iface.methods.iter().map(|m| {
        let semantics = match m.semantics {
            None => "at-most-once",
            Some(SemanticsAttr::Idempotent) => "idempotent: at-least-once",
            Some(SemanticsAttr::Oneway) => "oneway: maybe",
        };
        format!(" `{}` (operation id {}, {semantics})", m.name(), m.op)
    });
    let doc =
        format!(" Operations of the remote interface [`{trait_ident}`], with their stable operation ids.");

    quote! {
        #[doc = #doc]
        #[derive(
            #rt::__private::Clone,
            #rt::__private::Copy,
            #rt::__private::Debug,
            #rt::__private::PartialEq,
            #rt::__private::Eq,
            #rt::__private::Hash
        )]
        #vis enum #ops {
            #( #[doc = #variant_docs] #variants, )*
        }

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl #ops {
            /// Every operation, in declaration order.
            pub const ALL: &'static [Self] = &[#(Self::#variants),*];

            /// The interface's name, id, version and operations.
            pub const DESCRIPTOR: &'static #rt::__private::InterfaceDescriptor =
                &#rt::__private::InterfaceDescriptor {
                    name: #name,
                    id: #rt::__private::InterfaceId(#id),
                    version: #version,
                    methods: &[#(#descriptors),*],
                };

            /// The operation's id on the wire.
            pub const fn id(self) -> #rt::__private::OpId {
                match self {
                    #( Self::#variants => #rt::__private::OpId(#ids), )*
                }
            }

            /// The operation's descriptor: name, id, invocation semantics, default deadline.
            pub const fn descriptor(self) -> &'static #rt::__private::MethodDescriptor {
                #descriptor_body
            }

            /// The method's name.
            pub const fn name(self) -> &'static str {
                match self {
                    #( Self::#variants => #names, )*
                }
            }

            /// The operation with id `id`, if the interface has one.
            pub const fn from_id(id: #rt::__private::OpId) -> #rt::__private::Option<Self> {
                match id.0 {
                    #( #ids => #rt::__private::Option::Some(Self::#variants), )*
                    _ => #rt::__private::Option::None,
                }
            }
        }
    }
}
