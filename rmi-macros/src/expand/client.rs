//! `{Trait}Client`: the client stub (proxy).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::local;
use crate::attr::SemanticsAttr;
use crate::model::{Interface, Method, Output};

pub(super) fn expand(iface: &Interface<'_>) -> TokenStream {
    let rt = &iface.krate;
    let vis = &iface.original.vis;
    let trait_ident = &iface.original.ident;
    let client = iface.item_ident("Client");
    let ops = iface.item_ident("Op");
    let client_name = client.to_string();
    let skeleton = iface.item_ident("Skeleton");
    let doc = format!(
        " Client stub (proxy) for remote [`{trait_ident}`] objects: each method sends the call to the \
         remote object and returns its result, or an `Error` when the call itself failed.\n\n\
         It is also the interface's reference type: it travels by reference. A `{client}` in a \
         method's arguments or result (or inside them) is sent as the object's reference, and the \
         receiver gets a working `{client}` for the same object.\n\n\
         Make one with `Endpoint::proxy` from a remote reference, or export a servant with \
         [`{client}::export`]."
    );
    let export_doc = format!(
        " Exports `servant` as a [`{trait_ident}`] object of `endpoint`, to be collected when \
         nobody holds a reference to it any more, and returns the first reference to it."
    );
    let methods = iface.methods.iter().map(|m| inherent_method(iface, m));
    let trait_impl = iface.all_fallible().then(|| trait_impl(iface));
    let wire_checks = wire_checks(iface);

    quote! {
        #[doc = #doc]
        #vis struct #client {
            proxy: #rt::__private::Proxy,
        }

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl #client {
            #[doc = #export_doc]
            ///
            /// Calls through it skip the network; sending it sends the reference.
            pub fn export<__S>(endpoint: &#rt::__private::Endpoint, servant: __S) -> Self
            where
                __S: #trait_ident + #rt::__private::Send + #rt::__private::Sync + 'static,
            {
                Self::export_with(endpoint, #rt::__private::Arc::new(servant), #rt::__private::Export::new())
            }

            /// Like [`Self::export`], for a servant shared with other code, with options: pinned,
            /// or told when it becomes unreferenced.
            pub fn export_with<__S>(
                endpoint: &#rt::__private::Endpoint,
                servant: #rt::__private::Arc<__S>,
                options: #rt::__private::Export,
            ) -> Self
            where
                __S: #trait_ident + #rt::__private::Send + #rt::__private::Sync + 'static,
            {
                let skeleton = #rt::__private::Arc::new(#skeleton::from_arc(servant));
                Self { proxy: endpoint.export_collected(skeleton, options) }
            }

            #(#methods)*
        }

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl #rt::__private::serde::Serialize for #client {
            fn serialize<__Ser>(&self, serializer: __Ser) -> #rt::__private::Result<__Ser::Ok, __Ser::Error>
            where
                __Ser: #rt::__private::serde::Serializer,
            {
                #rt::__private::serialize_proxy(&self.proxy, serializer)
            }
        }

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl<'de> #rt::__private::serde::Deserialize<'de> for #client {
            fn deserialize<__De>(deserializer: __De) -> #rt::__private::Result<Self, __De::Error>
            where
                __De: #rt::__private::serde::Deserializer<'de>,
            {
                #rt::__private::Result::map(
                    #rt::__private::deserialize_proxy(deserializer, #ops::DESCRIPTOR),
                    |proxy| Self { proxy },
                )
            }
        }

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl #rt::__private::Stub for #client {
            const DESCRIPTOR: &'static #rt::__private::InterfaceDescriptor = #ops::DESCRIPTOR;

            fn from_proxy(proxy: #rt::__private::Proxy) -> Self {
                Self { proxy }
            }

            fn proxy(&self) -> &#rt::__private::Proxy {
                &self.proxy
            }
        }

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl #rt::__private::Clone for #client {
            fn clone(&self) -> Self {
                Self { proxy: #rt::__private::Clone::clone(&self.proxy) }
            }
        }

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl #rt::__private::Debug for #client {
            fn fmt(&self, f: &mut #rt::__private::fmt::Formatter<'_>) -> #rt::__private::fmt::Result {
                f.debug_struct(#client_name).field("proxy", &self.proxy).finish()
            }
        }

        #trait_impl
        #wire_checks
    }
}

fn inherent_method(iface: &Interface<'_>, m: &Method<'_>) -> TokenStream {
    let rt = &iface.krate;
    let ops = iface.item_ident("Op");
    let name = m.ident;
    let name_str = m.name();
    let variant = &m.variant;
    let method = quote!(#ops::#variant.descriptor());
    let arg_names: Vec<_> = m.args.iter().map(|a| a.ident).collect();
    let arg_types = m.args.iter().map(|a| a.ty);
    let mut docs: Vec<_> = m.forwarded_attrs().map(|a| quote!(#a)).collect();
    if !m.original.attrs.iter().any(|a| a.path().is_ident("doc")) {
        let doc = format!(" Calls `{name_str}` on the remote object.");
        docs.push(quote!(#[doc = #doc]));
    }
    if m.semantics == Some(SemanticsAttr::Oneway) {
        docs.push(quote!(#[doc = ""]));
        docs.push(quote!(#[doc = " One-way (maybe semantics): the request is queued and the call returns without waiting \
            for the network; no result, no remote error."]));
    }
    // `Vec<u8>` arguments travel as byte strings: the same bytes as serde's sequence, in one copy.
    let arg_values = m.args.iter().map(|a| {
        let ident = a.ident;
        if a.bytes { quote!(#rt::__private::AsBytes(&#ident)) } else { quote!(#ident) }
    });
    // Spanned at the user's method, so a type that cannot travel is reported there too.
    let call_fn = syn::Ident::new("call", name.span());
    let args = quote_spanned!(name.span()=> &(#(#arg_values,)*));
    let call = |ok: &dyn quote::ToTokens, err: &dyn quote::ToTokens| {
        quote! {
            self.proxy
                .#call_fn::<_, #ok, #err>(#method, #args)
                .await
        }
    };
    if m.semantics == Some(SemanticsAttr::Oneway) {
        let call_fn = syn::Ident::new("call_oneway", name.span());
        return quote! {
            #(#docs)*
            pub async fn #name(&self, #(#arg_names: #arg_types),*)
                -> #rt::__private::Result<(), #rt::__private::Error>
            {
                self.proxy.#call_fn(#method, #args).await
            }
        };
    }
    // A `Vec<u8>` value comes back as a byte string, decoded in one copy.
    let byte_buf = quote!(#rt::__private::ByteBuf);
    let (r, v) = (local("__r"), local("__v"));
    let (ret, body) = match &m.output {
        Output::Unit => {
            let call = call(&quote!(()), &quote!(#rt::__private::NoError));
            (quote!(()), quote!(#call.map(#rt::__private::into_ok)))
        }
        Output::Value(ty) if m.returns_bytes() => {
            let call = call(&byte_buf, &quote!(#rt::__private::NoError));
            (quote!(#ty), quote!(#call.map(|#r| #rt::__private::into_ok(#r).0)))
        }
        Output::Value(ty) => {
            let call = call(ty, &quote!(#rt::__private::NoError));
            (quote!(#ty), quote!(#call.map(#rt::__private::into_ok)))
        }
        Output::Result { whole, err, .. } if m.returns_bytes() => {
            let call = call(&byte_buf, err);
            (quote!(#whole), quote!(#call.map(|#r| #r.map(|#v| #v.0))))
        }
        Output::Result { whole, ok, err } => (quote!(#whole), call(ok, err)),
    };
    quote! {
        #(#docs)*
        pub async fn #name(&self, #(#arg_names: #arg_types),*)
            -> #rt::__private::Result<#ret, #rt::__private::Error>
        {
            #body
        }
    }
}

/// `impl Trait for TraitClient`, when every method returns `Result<T, E>`: an `Error` becomes an `E`
/// through `From`. The `for<'__rmi>` makes each bound a condition of the impl rather than a
/// requirement: where an `E` does not convert, the impl simply does not exist.
fn trait_impl(iface: &Interface<'_>) -> TokenStream {
    let rt = &iface.krate;
    let trait_ident = &iface.original.ident;
    let client = iface.item_ident("Client");
    let mut bounds = Vec::new();
    let methods = iface.methods.iter().map(|m| {
        let Output::Result { whole, err, .. } = &m.output else { unreachable!("all methods are fallible") };
        bounds.push(quote!(for<'__rmi> #err: #rt::__private::From<#rt::__private::Error>));
        let name = m.ident;
        let arg_names: Vec<_> = m.args.iter().map(|a| a.ident).collect();
        let arg_types = m.args.iter().map(|a| a.ty);
        let e = local("__e");
        quote! {
            fn #name(&self, #(#arg_names: #arg_types),*)
                -> impl #rt::__private::Future<Output = #whole> + #rt::__private::Send
            {
                async move {
                    #client::#name(self, #(#arg_names),*).await.unwrap_or_else(|#e| {
                        #rt::__private::Result::Err(#rt::__private::From::from(#e))
                    })
                }
            }
        }
    });
    let methods: Vec<_> = methods.collect();
    quote! {
        #[automatically_derived]
        #[allow(unused_qualifications, deprecated)]
        impl #trait_ident for #client where #(#bounds),* {
            #(#methods)*
        }
    }
}

/// One compile-time check per argument and return type, spanned at that type, so a type that cannot
/// travel is reported at the user's own tokens.
fn wire_checks(iface: &Interface<'_>) -> TokenStream {
    let rt = &iface.krate;
    let mut types = Vec::new();
    for m in &iface.methods {
        types.extend(m.args.iter().map(|a| a.ty));
        match &m.output {
            Output::Unit => {}
            Output::Value(ty) => types.push(ty),
            Output::Result { ok, err, .. } => types.extend([*ok, *err]),
        }
    }
    let mut seen = std::collections::HashSet::new();
    types.retain(|ty| seen.insert(quote!(#ty).to_string()));
    let checks = types.iter().map(|ty| {
        quote_spanned! {ty.span()=> #rt::__private::assert_wire::<#ty>(); }
    });
    quote! {
        const _: () = {
            #(#checks)*
        };
    }
}
