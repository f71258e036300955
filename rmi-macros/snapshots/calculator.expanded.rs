/// A calculator that lives in another process.
pub trait Calculator {
    /// Adds two numbers.
    fn add(
        &self,
        a: i32,
        b: i32,
    ) -> impl ::rmi_runtime::__private::Future<
        Output = i32,
    > + ::rmi_runtime::__private::Send;
    /// Divides, failing on a zero divisor.
    fn div(
        &self,
        a: i32,
        b: i32,
    ) -> impl ::rmi_runtime::__private::Future<
        Output = Result<i32, MathError>,
    > + ::rmi_runtime::__private::Send;
    fn reset(
        &self,
    ) -> impl ::rmi_runtime::__private::Future<
        Output = (),
    > + ::rmi_runtime::__private::Send;
    fn history(
        &self,
    ) -> impl ::rmi_runtime::__private::Future<
        Output = Vec<String>,
    > + ::rmi_runtime::__private::Send;
    /// Multiplies each byte; `Vec<u8>` travels as a byte string.
    fn scale(
        &self,
        bytes: Vec<u8>,
        factor: u8,
    ) -> impl ::rmi_runtime::__private::Future<
        Output = Vec<u8>,
    > + ::rmi_runtime::__private::Send;
    /// Reads a memory register; only the top-level `Vec<u8>` travels as a byte string.
    fn recall(
        &self,
        key: Option<Vec<u8>>,
    ) -> impl ::rmi_runtime::__private::Future<
        Output = Result<::std::vec::Vec<u8>, MathError>,
    > + ::rmi_runtime::__private::Send;
}
/// Operations of the remote interface [`Calculator`], with their stable operation ids.
#[derive(
    ::rmi_runtime::__private::Clone,
    ::rmi_runtime::__private::Copy,
    ::rmi_runtime::__private::Debug,
    ::rmi_runtime::__private::PartialEq,
    ::rmi_runtime::__private::Eq,
    ::rmi_runtime::__private::Hash
)]
pub enum CalculatorOp {
    /// `add` (operation id 993596020, idempotent: at-least-once)
    Add,
    /// `div` (operation id 3848448840, at-most-once)
    Div,
    /// `reset` (operation id 1695364032, oneway: maybe)
    Reset,
    /// `history` (operation id 7, at-most-once)
    History,
    /// `scale` (operation id 2190941297, at-most-once)
    Scale,
    /// `recall` (operation id 1518452144, at-most-once)
    Recall,
}
#[automatically_derived]
#[allow(unused_qualifications)]
impl CalculatorOp {
    /// Every operation, in declaration order.
    pub const ALL: &'static [Self] = &[
        Self::Add,
        Self::Div,
        Self::Reset,
        Self::History,
        Self::Scale,
        Self::Recall,
    ];
    /// The interface's name, id, version and operations.
    pub const DESCRIPTOR: &'static ::rmi_runtime::__private::InterfaceDescriptor = &::rmi_runtime::__private::InterfaceDescriptor {
        name: "Calculator",
        id: ::rmi_runtime::__private::InterfaceId(12421800474900983181u64),
        version: 2u32,
        methods: &[
            ::rmi_runtime::__private::MethodDescriptor::new(
                    "add",
                    ::rmi_runtime::__private::OpId(993596020u32),
                )
                .with_semantics(::rmi_runtime::__private::Semantics::AtLeastOnce),
            ::rmi_runtime::__private::MethodDescriptor::new(
                    "div",
                    ::rmi_runtime::__private::OpId(3848448840u32),
                )
                .with_timeout(
                    ::rmi_runtime::__private::Duration::new(0u64, 250000000u32),
                ),
            ::rmi_runtime::__private::MethodDescriptor::new(
                    "reset",
                    ::rmi_runtime::__private::OpId(1695364032u32),
                )
                .with_semantics(::rmi_runtime::__private::Semantics::Maybe),
            ::rmi_runtime::__private::MethodDescriptor::new(
                "history",
                ::rmi_runtime::__private::OpId(7u32),
            ),
            ::rmi_runtime::__private::MethodDescriptor::new(
                "scale",
                ::rmi_runtime::__private::OpId(2190941297u32),
            ),
            ::rmi_runtime::__private::MethodDescriptor::new(
                "recall",
                ::rmi_runtime::__private::OpId(1518452144u32),
            ),
        ],
    };
    /// The operation's id on the wire.
    pub const fn id(self) -> ::rmi_runtime::__private::OpId {
        match self {
            Self::Add => ::rmi_runtime::__private::OpId(993596020u32),
            Self::Div => ::rmi_runtime::__private::OpId(3848448840u32),
            Self::Reset => ::rmi_runtime::__private::OpId(1695364032u32),
            Self::History => ::rmi_runtime::__private::OpId(7u32),
            Self::Scale => ::rmi_runtime::__private::OpId(2190941297u32),
            Self::Recall => ::rmi_runtime::__private::OpId(1518452144u32),
        }
    }
    /// The operation's descriptor: name, id, invocation semantics, default deadline.
    pub const fn descriptor(
        self,
    ) -> &'static ::rmi_runtime::__private::MethodDescriptor {
        &Self::DESCRIPTOR.methods[self as usize]
    }
    /// The method's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Div => "div",
            Self::Reset => "reset",
            Self::History => "history",
            Self::Scale => "scale",
            Self::Recall => "recall",
        }
    }
    /// The operation with id `id`, if the interface has one.
    pub const fn from_id(
        id: ::rmi_runtime::__private::OpId,
    ) -> ::rmi_runtime::__private::Option<Self> {
        match id.0 {
            993596020u32 => ::rmi_runtime::__private::Option::Some(Self::Add),
            3848448840u32 => ::rmi_runtime::__private::Option::Some(Self::Div),
            1695364032u32 => ::rmi_runtime::__private::Option::Some(Self::Reset),
            7u32 => ::rmi_runtime::__private::Option::Some(Self::History),
            2190941297u32 => ::rmi_runtime::__private::Option::Some(Self::Scale),
            1518452144u32 => ::rmi_runtime::__private::Option::Some(Self::Recall),
            _ => ::rmi_runtime::__private::Option::None,
        }
    }
}
/** Client stub (proxy) for remote [`Calculator`] objects: each method sends the call to the remote object and returns its result, or an `Error` when the call itself failed.

It is also the interface's reference type: it travels by reference. A `CalculatorClient` in a method's arguments or result (or inside them) is sent as the object's reference, and the receiver gets a working `CalculatorClient` for the same object.

Make one with `Endpoint::proxy` from a remote reference, or export a servant with [`CalculatorClient::export`].*/
pub struct CalculatorClient {
    proxy: ::rmi_runtime::__private::Proxy,
}
#[automatically_derived]
#[allow(unused_qualifications)]
impl CalculatorClient {
    /// Exports `servant` as a [`Calculator`] object of `endpoint`, to be collected when nobody holds a reference to it any more, and returns the first reference to it.
    ///
    /// Calls through it skip the network; sending it sends the reference.
    pub fn export<__S>(
        endpoint: &::rmi_runtime::__private::Endpoint,
        servant: __S,
    ) -> Self
    where
        __S: Calculator + ::rmi_runtime::__private::Send + ::rmi_runtime::__private::Sync
            + 'static,
    {
        Self::export_with(
            endpoint,
            ::rmi_runtime::__private::Arc::new(servant),
            ::rmi_runtime::__private::Export::new(),
        )
    }
    /// Like [`Self::export`], for a servant shared with other code, with options: pinned,
    /// or told when it becomes unreferenced.
    pub fn export_with<__S>(
        endpoint: &::rmi_runtime::__private::Endpoint,
        servant: ::rmi_runtime::__private::Arc<__S>,
        options: ::rmi_runtime::__private::Export,
    ) -> Self
    where
        __S: Calculator + ::rmi_runtime::__private::Send + ::rmi_runtime::__private::Sync
            + 'static,
    {
        let skeleton = ::rmi_runtime::__private::Arc::new(
            CalculatorSkeleton::from_arc(servant),
        );
        Self {
            proxy: endpoint.export_collected(skeleton, options),
        }
    }
    /// Adds two numbers.
    pub async fn add(
        &self,
        a: i32,
        b: i32,
    ) -> ::rmi_runtime::__private::Result<i32, ::rmi_runtime::__private::Error> {
        self.proxy
            .call::<
                _,
                i32,
                ::rmi_runtime::__private::NoError,
            >(CalculatorOp::Add.descriptor(), &(a, b))
            .await
            .map(::rmi_runtime::__private::into_ok)
    }
    /// Divides, failing on a zero divisor.
    pub async fn div(
        &self,
        a: i32,
        b: i32,
    ) -> ::rmi_runtime::__private::Result<
        Result<i32, MathError>,
        ::rmi_runtime::__private::Error,
    > {
        self.proxy
            .call::<_, i32, MathError>(CalculatorOp::Div.descriptor(), &(a, b))
            .await
    }
    /// Calls `reset` on the remote object.
    ///
    /// One-way (maybe semantics): the request is queued and the call returns without waiting for the network; no result, no remote error.
    pub async fn reset(
        &self,
    ) -> ::rmi_runtime::__private::Result<(), ::rmi_runtime::__private::Error> {
        self.proxy.call_oneway(CalculatorOp::Reset.descriptor(), &()).await
    }
    /// Calls `history` on the remote object.
    pub async fn history(
        &self,
    ) -> ::rmi_runtime::__private::Result<Vec<String>, ::rmi_runtime::__private::Error> {
        self.proxy
            .call::<
                _,
                Vec<String>,
                ::rmi_runtime::__private::NoError,
            >(CalculatorOp::History.descriptor(), &())
            .await
            .map(::rmi_runtime::__private::into_ok)
    }
    /// Multiplies each byte; `Vec<u8>` travels as a byte string.
    pub async fn scale(
        &self,
        bytes: Vec<u8>,
        factor: u8,
    ) -> ::rmi_runtime::__private::Result<Vec<u8>, ::rmi_runtime::__private::Error> {
        self.proxy
            .call::<
                _,
                ::rmi_runtime::__private::ByteBuf,
                ::rmi_runtime::__private::NoError,
            >(
                CalculatorOp::Scale.descriptor(),
                &(::rmi_runtime::__private::AsBytes(&bytes), factor),
            )
            .await
            .map(|__r| ::rmi_runtime::__private::into_ok(__r).0)
    }
    /// Reads a memory register; only the top-level `Vec<u8>` travels as a byte string.
    pub async fn recall(
        &self,
        key: Option<Vec<u8>>,
    ) -> ::rmi_runtime::__private::Result<
        Result<::std::vec::Vec<u8>, MathError>,
        ::rmi_runtime::__private::Error,
    > {
        self.proxy
            .call::<
                _,
                ::rmi_runtime::__private::ByteBuf,
                MathError,
            >(CalculatorOp::Recall.descriptor(), &(key,))
            .await
            .map(|__r| __r.map(|__v| __v.0))
    }
}
#[automatically_derived]
#[allow(unused_qualifications)]
impl ::rmi_runtime::__private::serde::Serialize for CalculatorClient {
    fn serialize<__Ser>(
        &self,
        serializer: __Ser,
    ) -> ::rmi_runtime::__private::Result<__Ser::Ok, __Ser::Error>
    where
        __Ser: ::rmi_runtime::__private::serde::Serializer,
    {
        ::rmi_runtime::__private::serialize_proxy(&self.proxy, serializer)
    }
}
#[automatically_derived]
#[allow(unused_qualifications)]
impl<'de> ::rmi_runtime::__private::serde::Deserialize<'de> for CalculatorClient {
    fn deserialize<__De>(
        deserializer: __De,
    ) -> ::rmi_runtime::__private::Result<Self, __De::Error>
    where
        __De: ::rmi_runtime::__private::serde::Deserializer<'de>,
    {
        ::rmi_runtime::__private::Result::map(
            ::rmi_runtime::__private::deserialize_proxy(
                deserializer,
                CalculatorOp::DESCRIPTOR,
            ),
            |proxy| Self { proxy },
        )
    }
}
#[automatically_derived]
#[allow(unused_qualifications)]
impl ::rmi_runtime::__private::Stub for CalculatorClient {
    const DESCRIPTOR: &'static ::rmi_runtime::__private::InterfaceDescriptor = CalculatorOp::DESCRIPTOR;
    fn from_proxy(proxy: ::rmi_runtime::__private::Proxy) -> Self {
        Self { proxy }
    }
    fn proxy(&self) -> &::rmi_runtime::__private::Proxy {
        &self.proxy
    }
}
#[automatically_derived]
#[allow(unused_qualifications)]
impl ::rmi_runtime::__private::Clone for CalculatorClient {
    fn clone(&self) -> Self {
        Self {
            proxy: ::rmi_runtime::__private::Clone::clone(&self.proxy),
        }
    }
}
#[automatically_derived]
#[allow(unused_qualifications)]
impl ::rmi_runtime::__private::Debug for CalculatorClient {
    fn fmt(
        &self,
        f: &mut ::rmi_runtime::__private::fmt::Formatter<'_>,
    ) -> ::rmi_runtime::__private::fmt::Result {
        f.debug_struct("CalculatorClient").field("proxy", &self.proxy).finish()
    }
}
const _: () = {
    ::rmi_runtime::__private::assert_wire::<i32>();
    ::rmi_runtime::__private::assert_wire::<MathError>();
    ::rmi_runtime::__private::assert_wire::<Vec<String>>();
    ::rmi_runtime::__private::assert_wire::<Vec<u8>>();
    ::rmi_runtime::__private::assert_wire::<u8>();
    ::rmi_runtime::__private::assert_wire::<Option<Vec<u8>>>();
    ::rmi_runtime::__private::assert_wire::<::std::vec::Vec<u8>>();
};
/// Server skeleton for [`Calculator`]: decodes each call, runs it on the servant `S` and encodes the outcome. Export it with `Endpoint::export`.
pub struct CalculatorSkeleton<S> {
    servant: ::rmi_runtime::__private::Arc<S>,
}
#[automatically_derived]
#[allow(unused_qualifications)]
impl<__S> CalculatorSkeleton<__S> {
    /// A skeleton serving `servant`.
    pub fn new(servant: __S) -> Self {
        Self {
            servant: ::rmi_runtime::__private::Arc::new(servant),
        }
    }
    /// A skeleton serving a servant that is shared with other code.
    pub fn from_arc(servant: ::rmi_runtime::__private::Arc<__S>) -> Self {
        Self { servant }
    }
    /// The servant.
    pub fn servant(&self) -> &::rmi_runtime::__private::Arc<__S> {
        &self.servant
    }
}
#[automatically_derived]
#[allow(unused_qualifications)]
impl<__S> ::rmi_runtime::__private::Debug for CalculatorSkeleton<__S> {
    fn fmt(
        &self,
        f: &mut ::rmi_runtime::__private::fmt::Formatter<'_>,
    ) -> ::rmi_runtime::__private::fmt::Result {
        f.debug_struct("CalculatorSkeleton").finish_non_exhaustive()
    }
}
#[automatically_derived]
#[allow(unused_qualifications, deprecated)]
impl<__S> ::rmi_runtime::__private::Dispatch for CalculatorSkeleton<__S>
where
    __S: Calculator + ::rmi_runtime::__private::Send + ::rmi_runtime::__private::Sync
        + 'static,
{
    fn descriptor(&self) -> &'static ::rmi_runtime::__private::InterfaceDescriptor {
        CalculatorOp::DESCRIPTOR
    }
    fn dispatch<'__a>(
        &'__a self,
        __op: ::rmi_runtime::__private::OpId,
        __args: ::rmi_runtime::__private::Bytes,
        __reply: ::rmi_runtime::__private::Reply<'__a>,
    ) -> ::rmi_runtime::__private::BoxFuture<'__a, ()> {
        ::rmi_runtime::__private::Box::pin(async move {
            match CalculatorOp::from_id(__op) {
                ::rmi_runtime::__private::Option::Some(CalculatorOp::Add) => {
                    let (a, b) = match ::rmi_runtime::__private::decode_args::<
                        (i32, i32),
                    >(__args) {
                        ::rmi_runtime::__private::Result::Ok(__v) => __v,
                        ::rmi_runtime::__private::Result::Err(__fault) => {
                            return __reply.fault(__fault);
                        }
                    };
                    let __ret = <__S as Calculator>::add(&*self.servant, a, b).await;
                    __reply.ok(&__ret)
                }
                ::rmi_runtime::__private::Option::Some(CalculatorOp::Div) => {
                    let (a, b) = match ::rmi_runtime::__private::decode_args::<
                        (i32, i32),
                    >(__args) {
                        ::rmi_runtime::__private::Result::Ok(__v) => __v,
                        ::rmi_runtime::__private::Result::Err(__fault) => {
                            return __reply.fault(__fault);
                        }
                    };
                    let __ret = <__S as Calculator>::div(&*self.servant, a, b).await;
                    match __ret {
                        ::rmi_runtime::__private::Result::Ok(__v) => __reply.ok(&__v),
                        ::rmi_runtime::__private::Result::Err(__e) => __reply.err(&__e),
                    }
                }
                ::rmi_runtime::__private::Option::Some(CalculatorOp::Reset) => {
                    let () = match ::rmi_runtime::__private::decode_args::<()>(__args) {
                        ::rmi_runtime::__private::Result::Ok(__v) => __v,
                        ::rmi_runtime::__private::Result::Err(__fault) => {
                            return __reply.fault(__fault);
                        }
                    };
                    let __ret = <__S as Calculator>::reset(&*self.servant).await;
                    __reply.ok(&__ret)
                }
                ::rmi_runtime::__private::Option::Some(CalculatorOp::History) => {
                    let () = match ::rmi_runtime::__private::decode_args::<()>(__args) {
                        ::rmi_runtime::__private::Result::Ok(__v) => __v,
                        ::rmi_runtime::__private::Result::Err(__fault) => {
                            return __reply.fault(__fault);
                        }
                    };
                    let __ret = <__S as Calculator>::history(&*self.servant).await;
                    __reply.ok(&__ret)
                }
                ::rmi_runtime::__private::Option::Some(CalculatorOp::Scale) => {
                    let (::rmi_runtime::__private::ByteBuf(bytes), factor) = match ::rmi_runtime::__private::decode_args::<
                        (::rmi_runtime::__private::ByteBuf, u8),
                    >(__args) {
                        ::rmi_runtime::__private::Result::Ok(__v) => __v,
                        ::rmi_runtime::__private::Result::Err(__fault) => {
                            return __reply.fault(__fault);
                        }
                    };
                    let __ret = <__S as Calculator>::scale(&*self.servant, bytes, factor)
                        .await;
                    __reply.ok(&::rmi_runtime::__private::AsBytes(&__ret))
                }
                ::rmi_runtime::__private::Option::Some(CalculatorOp::Recall) => {
                    let (key,) = match ::rmi_runtime::__private::decode_args::<
                        (Option<Vec<u8>>,),
                    >(__args) {
                        ::rmi_runtime::__private::Result::Ok(__v) => __v,
                        ::rmi_runtime::__private::Result::Err(__fault) => {
                            return __reply.fault(__fault);
                        }
                    };
                    let __ret = <__S as Calculator>::recall(&*self.servant, key).await;
                    match __ret {
                        ::rmi_runtime::__private::Result::Ok(__v) => {
                            __reply.ok(&::rmi_runtime::__private::AsBytes(&__v))
                        }
                        ::rmi_runtime::__private::Result::Err(__e) => __reply.err(&__e),
                    }
                }
                ::rmi_runtime::__private::Option::None => {
                    __reply.fault(::rmi_runtime::__private::Fault::NoSuchOperation)
                }
            }
        })
    }
}
