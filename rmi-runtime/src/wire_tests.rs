//! The byte-level examples of `docs/PROTOCOL.md`, checked: changing any of them is a wire break.

use bytes::BytesMut;
use rmi_core::codec;
use rmi_core::{
    CallId, EndpointId, Fault, Flags, Header, Hello, InterfaceId, ObjectId, OpId, Reply, RequestHeader,
};

fn frame(header: Header, body: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let start = codec::begin_frame(&mut buf, &header);
    body(&mut buf);
    codec::finish_frame(&mut buf, start, 1 << 20).unwrap();
    buf.to_vec()
}

#[test]
fn the_handshake_preamble() {
    let hello = Hello::new(EndpointId::from_u128(1)).encode();
    assert_eq!(hello, [b'R', b'M', b'I', 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn a_request_frame() {
    let header = Header::Request(RequestHeader {
        call: CallId(300),
        object: ObjectId::from_u128(0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100),
        interface: InterfaceId(0x1234),
        version: 1,
        op: OpId(7),
        flags: Flags::ONEWAY,
        timeout_us: Some(5_000_000),
    });
    let bytes = frame(header, |buf| codec::encode_into(buf, &(2i32, 3i32)).unwrap());
    #[rustfmt::skip]
    let expected = [
        0x00, 0x00, 0x00, 0x1f,                         // body length 31
        0x00,                                           // Header::Request
        0xac, 0x02,                                     // call 300
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, // object id, 16 bytes little-endian
        0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0xb4, 0x24,                                     // interface 0x1234
        0x01,                                           // version 1
        0x07,                                           // op 7
        0x01,                                           // flags: ONEWAY
        0x01, 0xc0, 0x96, 0xb1, 0x02,                   // timeout_us Some(5_000_000)
        0x04, 0x06,                                     // arguments (2i32, 3i32), zigzag
    ];
    assert_eq!(bytes, expected);
}

#[test]
fn reply_and_cancel_frames() {
    let ok = frame(Header::Reply(CallId(300)), |buf| Reply::new(buf).ok(&5i32));
    assert_eq!(ok, [0, 0, 0, 5, 0x01, 0xac, 0x02, 0x00, 0x0a]);
    let err = frame(Header::Reply(CallId(300)), |buf| Reply::new(buf).err("no"));
    assert_eq!(err, [0, 0, 0, 7, 0x01, 0xac, 0x02, 0x01, 0x02, b'n', b'o']);
    let fault =
        frame(Header::Reply(CallId(300)), |buf| Reply::new(buf).fault(Fault::WrongVersion { served: 2 }));
    assert_eq!(fault, [0, 0, 0, 6, 0x01, 0xac, 0x02, 0x02, 0x03, 0x02]);
    let cancel = frame(Header::Cancel(CallId(300)), |_| {});
    assert_eq!(cancel, [0, 0, 0, 3, 0x02, 0xac, 0x02]);
}

#[test]
fn an_ack_frame() {
    let mut buf = BytesMut::new();
    codec::ack_frame(&mut buf, &mut [CallId(1), CallId(300)].into_iter(), 1 << 20);
    assert_eq!(buf[..], [0, 0, 0, 4, 0x03, 0x01, 0xac, 0x02]);
}

#[test]
fn fault_variant_indices() {
    let faults = [
        Fault::NoSuchObject,
        Fault::NoSuchOperation,
        Fault::WrongInterface { served: InterfaceId(1) },
        Fault::WrongVersion { served: 1 },
        Fault::BadArguments(String::new()),
        Fault::ServantPanicked(String::new()),
        Fault::Encode(String::new()),
        Fault::ReplyTooLarge { size: 1, limit: 1 },
        Fault::Overloaded { limit: 1 },
        Fault::ShuttingDown,
        Fault::ReplyLost,
    ];
    for (index, fault) in faults.iter().enumerate() {
        let mut buf = BytesMut::new();
        codec::encode_into(&mut buf, fault).unwrap();
        assert_eq!(usize::from(buf[0]), index, "{fault:?}");
    }
}
