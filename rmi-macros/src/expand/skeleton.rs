//! `{Trait}Skeleton<S>`: decodes each call, runs it on the servant, encodes the outcome.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;

use super::local;
use crate::model::{Interface, Output};

pub(super) fn expand(iface: &Interface<'_>) -> TokenStream {
    let rt = &iface.krate;
    let vis = &iface.original.vis;
    let trait_ident = &iface.original.ident;
    let skeleton = iface.item_ident("Skeleton");
    let ops = iface.item_ident("Op");
    let skeleton_name = skeleton.to_string();
    let doc = format!(
        " Server skeleton for [`{trait_ident}`]: decodes each call, runs it on the servant `S` and \
         encodes the outcome. Export it with `Endpoint::export`."
    );
    let (op, args, reply, ret, v, e, fault) = (
        local("__op"),
        local("__args"),
        local("__reply"),
        local("__ret"),
        local("__v"),
        local("__e"),
        local("__fault"),
    );

    let arms = iface.methods.iter().map(|m| {
        let name = m.ident;
        let variant = &m.variant;
        let arg_names: Vec<_> = m.args.iter().map(|a| a.ident).collect();
        // `Vec<u8>` arguments arrive as byte strings, and a `Vec<u8>` value leaves as one: the same
        // bytes as serde's sequence of `u8`, in one copy.
        let byte_buf = quote!(#rt::__private::ByteBuf);
        let arg_patterns = m.args.iter().map(|a| {
            let ident = a.ident;
            if a.bytes { quote!(#byte_buf(#ident)) } else { quote!(#ident) }
        });
        let arg_types =
            m.args.iter().map(|a| if a.bytes { byte_buf.clone() } else { a.ty.to_token_stream() });
        let bytes = m.returns_bytes();
        // Calls that need the user's types to be serde types are spanned at those types.
        let send = match &m.output {
            Output::Unit => quote!(#reply.ok(&#ret)),
            Output::Value(_) if bytes => quote!(#reply.ok(&#rt::__private::AsBytes(&#ret))),
            Output::Value(ty) => quote_spanned!(ty.span()=> #reply.ok(&#ret)),
            Output::Result { ok, err, .. } => {
                let ok = if bytes {
                    quote!(#reply.ok(&#rt::__private::AsBytes(&#v)))
                } else {
                    quote_spanned!(ok.span()=> #reply.ok(&#v))
                };
                let err = quote_spanned!(err.span()=> #reply.err(&#e));
                quote! {
                    match #ret {
                        #rt::__private::Result::Ok(#v) => #ok,
                        #rt::__private::Result::Err(#e) => #err,
                    }
                }
            }
        };
        let decode_args = quote_spanned!(name.span()=> decode_args);
        let arg_tuple = quote_spanned!(name.span()=> (#(#arg_types,)*));
        quote! {
            #rt::__private::Option::Some(#ops::#variant) => {
                let (#(#arg_patterns,)*) = match #rt::__private::#decode_args::<#arg_tuple>(#args) {
                    #rt::__private::Result::Ok(#v) => #v,
                    #rt::__private::Result::Err(#fault) => return #reply.fault(#fault),
                };
                let #ret = <__S as #trait_ident>::#name(&*self.servant, #(#arg_names),*).await;
                #send
            }
        }
    });

    quote! {
        #[doc = #doc]
        #vis struct #skeleton<S> {
            servant: #rt::__private::Arc<S>,
        }

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl<__S> #skeleton<__S> {
            /// A skeleton serving `servant`.
            pub fn new(servant: __S) -> Self {
                Self { servant: #rt::__private::Arc::new(servant) }
            }

            /// A skeleton serving a servant that is shared with other code.
            pub fn from_arc(servant: #rt::__private::Arc<__S>) -> Self {
                Self { servant }
            }

            /// The servant.
            pub fn servant(&self) -> &#rt::__private::Arc<__S> {
                &self.servant
            }
        }

        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl<__S> #rt::__private::Debug for #skeleton<__S> {
            fn fmt(&self, f: &mut #rt::__private::fmt::Formatter<'_>) -> #rt::__private::fmt::Result {
                f.debug_struct(#skeleton_name).finish_non_exhaustive()
            }
        }

        #[automatically_derived]
        #[allow(unused_qualifications, deprecated)]
        impl<__S> #rt::__private::Dispatch for #skeleton<__S>
        where
            __S: #trait_ident + #rt::__private::Send + #rt::__private::Sync + 'static,
        {
            fn descriptor(&self) -> &'static #rt::__private::InterfaceDescriptor {
                #ops::DESCRIPTOR
            }

            fn dispatch<'__a>(
                &'__a self,
                #op: #rt::__private::OpId,
                #args: #rt::__private::Bytes,
                #reply: #rt::__private::Reply<'__a>,
            ) -> #rt::__private::BoxFuture<'__a, ()> {
                #rt::__private::Box::pin(async move {
                    match #ops::from_id(#op) {
                        #(#arms)*
                        #rt::__private::Option::None => #reply.fault(#rt::__private::Fault::NoSuchOperation),
                    }
                })
            }
        }
    }
}
