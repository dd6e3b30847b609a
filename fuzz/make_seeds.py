#!/usr/bin/env python3
"""Writes the hand-built seed inputs of fuzz/corpus/ (see fuzz/README.md).

Each seed is built from the format's specification (RFC, BEP, IPFS spec), not
copied from another project. Run from anywhere: `python3 fuzz/make_seeds.py`.
It overwrites only the files it names; inputs libFuzzer added stay. The IPNS
record is signed with a fresh Ed25519 key on each run (needs the
`cryptography` package), so its bytes change while its shape does not.
"""

import base64
import hashlib
import os
import struct

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- protobuf and multiformats, by their specs -------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_bytes(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data


def pb_uint(field, n):
    return varint(field << 3) + varint(n)


RAW, DAG_PB, SHA2_256 = 0x55, 0x70, 0x12


def cid_v1(codec, data):
    return varint(1) + varint(codec) + bytes([SHA2_256, 32]) + hashlib.sha256(data).digest()


def cid_v0(data):
    return bytes([SHA2_256, 32]) + hashlib.sha256(data).digest()


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58btc(b):
    n = int.from_bytes(b, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + out


# --- dag-cbor (the subset the CAR header and IPNS data need) -------------------------------------------

def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    if n < 256:
        return bytes([major << 5 | 24, n])
    if n < 65536:
        return bytes([major << 5 | 25]) + struct.pack(">H", n)
    return bytes([major << 5 | 27]) + struct.pack(">Q", n)


def cbor_text(s):
    b = s.encode()
    return cbor_head(3, len(b)) + b


def cbor_bytes(b):
    return cbor_head(2, len(b)) + b


def cbor_map(pairs):
    # dag-cbor key order: shorter keys first, then bytewise.
    pairs = sorted(pairs, key=lambda kv: (len(kv[0].encode()), kv[0].encode()))
    return cbor_head(5, len(pairs)) + b"".join(cbor_text(k) + v for k, v in pairs)


def cbor_cid(cid):
    return b"\xd8\x2a" + cbor_bytes(b"\0" + cid)  # tag 42, identity multibase prefix


# --- UnixFS and dag-pb ---------------------------------------------------------------------------------

def unixfs(type_, data=None, filesize=None, blocksizes=(), hash_type=None, fanout=None):
    out = pb_uint(1, type_)
    if data is not None:
        out += pb_bytes(2, data)
    if filesize is not None:
        out += pb_uint(3, filesize)
    for s in blocksizes:
        out += pb_uint(4, s)
    if hash_type is not None:
        out += pb_uint(5, hash_type)
    if fanout is not None:
        out += pb_uint(6, fanout)
    return out


def dag_pb(links, data=None):
    # dag-pb spec: Links (field 2) come before Data (field 1) in the encoding.
    out = b""
    for cid, name, tsize in links:
        out += pb_bytes(2, pb_bytes(1, cid) + pb_bytes(2, name.encode()) + pb_uint(3, tsize))
    if data is not None:
        out += pb_bytes(1, data)
    return out


def dag_pb_seeds():
    a, b = b"hello\n", b"world\n"
    leaf_file = dag_pb([], unixfs(2, data=b"hello\n", filesize=6))
    file_node = dag_pb(
        [(cid_v1(RAW, a), "", len(a)), (cid_v1(RAW, b), "", len(b))],
        unixfs(2, filesize=12, blocksizes=(6, 6)),
    )
    directory = dag_pb(
        [(cid_v1(RAW, a), "hello.txt", 6), (cid_v1(DAG_PB, file_node), "both.txt", 100)],
        unixfs(1),
    )
    symlink = dag_pb([], unixfs(4, data=b"hello.txt"))
    hamt = dag_pb(
        [(cid_v1(RAW, a), "0Ahello.txt", 6), (cid_v1(DAG_PB, directory), "F1", 200)],
        unixfs(5, data=b"\x04\x00\x00\x00\x00\x00\x00\x00", hash_type=0x22, fanout=256),
    )
    raw_type = dag_pb([], unixfs(0, data=b"raw"))
    write("dag_pb", "file-leaf", leaf_file)
    write("dag_pb", "file-two-children", file_node)
    write("dag_pb", "directory", directory)
    write("dag_pb", "symlink", symlink)
    write("dag_pb", "hamt-shard", hamt)
    write("dag_pb", "raw-type", raw_type)
    write("dag_pb", "empty-directory", dag_pb([], unixfs(1)))
    return file_node


# --- CAR v1 --------------------------------------------------------------------------------------------

def car(roots, blocks):
    header = cbor_map([("roots", cbor_head(4, len(roots)) + b"".join(cbor_cid(r) for r in roots)),
                       ("version", cbor_head(0, 1))])
    out = varint(len(header)) + header
    for cid, data in blocks:
        out += varint(len(cid) + len(data)) + cid + data
    return out


def car_seeds(file_node):
    a, b = b"hello\n", b"world\n"
    root = cid_v1(DAG_PB, file_node)
    write("car", "file-with-two-leaves.car",
          car([root], [(root, file_node), (cid_v1(RAW, a), a), (cid_v1(RAW, b), b)]))
    write("car", "one-raw-block.car", car([cid_v1(RAW, a)], [(cid_v1(RAW, a), a)]))
    write("car", "cidv0-block.car", car([cid_v0(file_node)], [(cid_v0(file_node), file_node)]))
    write("car", "header-only.car", car([cid_v1(RAW, a)], []))


# --- bitswap 1.2.0 -------------------------------------------------------------------------------------

def bitswap_seeds(file_node):
    a = b"hello\n"
    def frame(m):
        return varint(len(m)) + m
    entry = lambda cid, want_type, cancel=0: pb_bytes(1, pb_bytes(1, cid) + pb_uint(2, 1) + pb_uint(3, cancel)
                                                      + pb_uint(4, want_type) + pb_uint(5, 1))
    wants = pb_bytes(1, entry(cid_v1(RAW, a), 1) + entry(cid_v1(DAG_PB, file_node), 0) + pb_uint(2, 0))
    prefix = varint(1) + varint(RAW) + varint(SHA2_256) + varint(32)
    payload = pb_bytes(3, pb_bytes(1, prefix) + pb_bytes(2, a))
    presences = (pb_bytes(4, pb_bytes(1, cid_v1(RAW, a)) + pb_uint(2, 0))
                 + pb_bytes(4, pb_bytes(1, cid_v1(DAG_PB, file_node)) + pb_uint(2, 1)))
    v100 = pb_bytes(2, file_node)
    cancel = pb_bytes(1, entry(cid_v1(RAW, a), 0, cancel=1))
    write("bitswap", "wantlist", frame(wants))
    write("bitswap", "payload-block", frame(payload))
    write("bitswap", "presences", frame(presences))
    write("bitswap", "bitswap-1.0.0-block", frame(v100))
    write("bitswap", "stream-of-four", frame(wants) + frame(payload) + frame(presences) + frame(cancel))
    write("bitswap", "pending-bytes", frame(pb_uint(5, 4096)))


# --- IPNS ----------------------------------------------------------------------------------------------

def ipns_seeds():
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        print("cryptography not installed: IPNS seeds not written")
        return
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    # libp2p PublicKey protobuf {Type: Ed25519 (1), Data}; a key this short is inlined (identity multihash).
    pub_pb = pb_uint(1, 1) + pb_bytes(2, pub)
    peer_id = base58btc(bytes([0x00, len(pub_pb)]) + pub_pb)
    for label, value in [("ipfs", "/ipfs/bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"),
                         ("ipns", "/ipns/example.org")]:
        validity = b"2100-01-01T00:00:00.000000000Z"
        data = cbor_map([("TTL", cbor_head(0, 3_600_000_000_000)), ("Value", cbor_bytes(value.encode())),
                         ("Sequence", cbor_head(0, 7)), ("Validity", cbor_bytes(validity)),
                         ("ValidityType", cbor_head(0, 0))])
        sig = key.sign(b"ipns-signature:" + data)
        record = (pb_bytes(1, value.encode()) + pb_uint(3, 0) + pb_bytes(4, validity) + pb_uint(5, 7)
                  + pb_uint(6, 3_600_000_000_000) + pb_bytes(8, sig) + pb_bytes(9, data))
        write("ipns", f"v2-record-{label}", peer_id.encode() + b"\n" + record)
        with_key = record + pb_bytes(7, pub_pb)
        write("ipns", f"v2-record-with-pubkey-{label}", peer_id.encode() + b"\n" + with_key)
    write("ipns", "dnslink", "example.org\ndnslink=/ipfs/bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354")


# --- UDP tracker (BEP 15) ------------------------------------------------------------------------------

def tracker_udp_seeds():
    tid = 0x1234ABCD
    write("tracker_udp", "connect", struct.pack(">IIQ", 0, tid, 0x41727101980AB))
    peers4 = bytes([127, 0, 0, 1]) + struct.pack(">H", 6881) + bytes([10, 0, 0, 2]) + struct.pack(">H", 51413)
    write("tracker_udp", "announce-ipv4", struct.pack(">IIIII", 1, tid, 1800, 2, 3) + peers4)
    peers6 = bytes(15) + b"\x01" + struct.pack(">H", 6881)
    write("tracker_udp", "announce-ipv6", struct.pack(">IIIII", 1, tid, 900, 0, 1) + peers6)
    write("tracker_udp", "scrape", struct.pack(">II", 2, tid) + struct.pack(">III", 5, 42, 3))
    write("tracker_udp", "error", struct.pack(">II", 3, tid) + b"unregistered torrent")


# --- HTTP headers --------------------------------------------------------------------------------------

def header_seeds():
    cd = {
        "plain": "Attachment; filename=example.html",
        "quoted": 'INLINE; FILENAME= "an example.html"',
        "ext-utf8": "attachment; filename*= UTF-8''%e2%82%ac%20rates",
        "both": "attachment; filename=\"EURO rates\"; filename*=utf-8''%e2%82%ac%20rates",
        "ext-latin1": "attachment; filename*=iso-8859-1'en'%A3%20rates.txt",
        "escaped-quote": 'attachment; filename="a\\"b.txt"; size=12',
        "traversal": 'attachment; filename="../../etc/passwd"',
        "windows-name": 'attachment; filename="CON.txt"',
    }
    for name, v in cd.items():
        write("content_disposition", name, v)
    cr = {
        "first-500": "bytes 0-499/1234",
        "middle": "bytes 500-999/1234",
        "unsatisfied": "bytes */1234",
        "unknown-length": "bytes 42-1233/*",
        "one-byte": "bytes 0-0/1",
        "last-of-max": "bytes 18446744073709551613-18446744073709551614/18446744073709551615",
    }
    for name, v in cr.items():
        write("content_range", name, v)
    body = b"hello world"
    b64 = lambda h: base64.b64encode(h(body).digest()).decode()
    write("digest", "repr-digest-sha256", f"sha-256=:{b64(hashlib.sha256)}:")
    write("digest", "repr-digest-two", f"sha-256=:{b64(hashlib.sha256)}:, sha-512=:{b64(hashlib.sha512)}:")
    write("digest", "repr-digest-unknown-first", f"unixsum=:AAAA:, sha-256=:{b64(hashlib.sha256)}:")
    write("digest", "digest-rfc3230", f"SHA-256={b64(hashlib.sha256)},MD5={b64(hashlib.md5)}")
    write("digest", "two-values", f"sha=:{b64(hashlib.sha1)}:\nsha-256=:{b64(hashlib.sha256)}:")


# --- FTP -----------------------------------------------------------------------------------------------

def ftp_seeds():
    vsftpd = ("-rw-r--r--    1 1000     1000      1048576 Nov 21 10:00 file.bin\r\n"
              "drwxr-xr-x    2 1000     1000         4096 Nov 21 10:00 sub\r\n"
              "lrwxrwxrwx    1 1000     1000            8 Jan 01  2025 link -> file.bin\r\n"
              "-rw-r--r--    1 1000     1000            0 Mar 03 09:15 name with spaces.txt\r\n")
    pure = ("drwxr-xr-x    3 1000       1000             4096 Nov 21 10:00 .\r\n"
            "drwxr-xr-x    3 1000       1000             4096 Nov 21 10:00 ..\r\n"
            "-rw-r--r--    1 1000       1000          1048576 Nov 21 10:00 file.bin\r\n"
            "drwxr-xr-x    2 1000       1000             4096 Nov 21 10:00 sub\r\n")
    ls = "total 12\n-rw-r--r-- 1 ftp ftp 12 Nov 21  2025 a.txt\ndrwxr-xr-x 2 ftp ftp 4096 Nov 21 10:00 ..\n"
    dos = ("11-21-26  10:00AM       <DIR>          sub\r\n"
           "11-21-26  10:00AM              1048576 file.bin\r\n")
    mlsd = ("type=cdir;modify=20261121100000;perm=el; /pub\r\n"
            "type=pdir;modify=20261121100000;perm=el; ..\r\n"
            "type=file;size=1048576;modify=20261121100000;perm=r; file.bin\r\n"
            "type=dir;modify=20261121100000;perm=el; sub\r\n"
            "Type=file;Size=12;Modify=19940728095854;Perm=; name with spaces.txt\r\n"
            "type=OS.unix=slink:/pub/file.bin;size=8; link\r\n")
    write("ftp_listing", "list-vsftpd", "0" + vsftpd)
    write("ftp_listing", "list-pure-ftpd", "0" + pure)
    write("ftp_listing", "list-ls-total", "0" + ls)
    write("ftp_listing", "list-dos", "0" + dos)
    write("ftp_listing", "mlsd", "1" + mlsd)
    replies = {
        "too-many-connections": "421 Too many connections (8) from this IP\r\n",
        "pure-ftpd-limit": "421 There are too many connections from your internet address.\r\n",
        "login-incorrect": "530 Login incorrect.\r\n",
        "not-found": "550 Failed to open file.\r\n",
        "passive": "227 Entering Passive Mode (127,0,0,1,195,80).\r\n",
        "extended-passive": "229 Entering Extended Passive Mode (|||50000|)\r\n",
        "size-mdtm": "213 1048576\r\n213 20261121100000\r\n",
        "transfer": "150 Opening BINARY mode data connection for file.bin (1048576 bytes).\r\n226 Transfer complete.\r\n",
        "rest": "350 Restart position accepted (1024).\r\n",
        "feat": "211-Features:\r\n MDTM\r\n REST STREAM\r\n SIZE\r\n MLST type*;size*;modify*;\r\n UTF8\r\n211 End\r\n",
        "transient": "450 Requested file action not taken.\r\n451 Local error.\r\n452 Insufficient storage.\r\n",
        "unknown-code": "599 Something odd.\r\n",
    }
    for name, v in replies.items():
        write("ftp_reply", name, v)


# --- S3 ------------------------------------------------------------------------------------------------

def s3_seeds():
    ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    def obj(key, size):
        return (f"  <Contents>\n    <Key>{key}</Key>\n    <LastModified>2026-11-21T10:00:00.000Z</LastModified>\n"
                f'    <ETag>"fba9dede5f27731c9771645a39863328"</ETag>\n    <Size>{size}</Size>\n'
                f"    <StorageClass>STANDARD</StorageClass>\n  </Contents>\n")
    write("s3_list", "one-page.xml",
          f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult {ns}>\n  <Name>bucket</Name>\n'
          f"  <Prefix>photos/</Prefix>\n  <KeyCount>2</KeyCount>\n  <MaxKeys>1000</MaxKeys>\n"
          f"  <IsTruncated>false</IsTruncated>\n" + obj("photos/2026/a.jpg", 434234) + obj("photos/b.jpg", 0)
          + "</ListBucketResult>\n")
    write("s3_list", "truncated.xml",
          f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult {ns}>\n  <Name>bucket</Name>\n'
          f"  <Prefix/>\n  <KeyCount>1</KeyCount>\n  <MaxKeys>1</MaxKeys>\n  <IsTruncated>true</IsTruncated>\n"
          f"  <ContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</ContinuationToken>\n"
          f"  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwN=</NextContinuationToken>\n"
          + obj("a.txt", 12) + "</ListBucketResult>\n")
    write("s3_list", "url-encoded.xml",
          f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult {ns}>\n  <Name>bucket</Name>\n'
          f"  <EncodingType>url</EncodingType>\n  <IsTruncated>false</IsTruncated>\n"
          + obj("dir%2Fname+with+spaces%E2%82%AC.txt", 5) + obj("..%2Fescape", 1) + "</ListBucketResult>\n")
    write("s3_list", "empty.xml",
          f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult {ns}><Name>bucket</Name>'
          f"<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>")
    err = lambda inner: f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n{inner}</Error>\n'
    write("s3_error", "no-such-key.xml", err(
        "  <Code>NoSuchKey</Code>\n  <Message>The resource you requested does not exist</Message>\n"
        "  <Resource>/mybucket/myfoto.jpg</Resource>\n  <RequestId>4442587FB7D0A2F9</RequestId>\n"))
    write("s3_error", "permanent-redirect.xml", err(
        "  <Code>PermanentRedirect</Code>\n  <Message>The bucket you are attempting to access must be addressed "
        "using the specified endpoint.</Message>\n  <Endpoint>bucket.s3.eu-west-1.amazonaws.com</Endpoint>\n"
        "  <Bucket>bucket</Bucket>\n  <RequestId>0123456789ABCDEF</RequestId>\n"))
    write("s3_error", "auth-header-malformed.xml", err(
        "  <Code>AuthorizationHeaderMalformed</Code>\n  <Message>The authorization header is malformed; the region "
        "'us-east-1' is wrong; expecting 'eu-west-1'</Message>\n  <Region>eu-west-1</Region>\n"))
    write("s3_error", "slow-down.xml", err("  <Code>SlowDown</Code>\n  <Message>Please reduce your request rate.</Message>\n"))


# --- netrc, control file, settings, tracker replies, bencode -------------------------------------------

def local_seeds():
    write("netrc", "machine-and-default",
          "ftp.example.org\nmachine ftp.example.org login alice password s3cret\n"
          "machine other.example.org login bob password hunter2 account acct\n"
          "default login anonymous password user@example.org\n")
    write("netrc", "macdef", "files.example.net\nmacdef init\ncd /pub\nbinary\n\n"
          "machine FILES.example.net\n  login carol\n  password 'p w'\n")
    write("netrc", "default-only", "anywhere.example\ndefault login anonymous password guest\n")
    write("control_file", "engine.dlm",
          '{"version":1,"identity":{"source":"https://example.org/file.iso","len":1048576,'
          '"validator":"\\"5f1a-100000\\""},"done":[{"start":0,"end":262144},{"start":524288,"end":786432}],'
          '"durable":[{"start":0,"end":262144}],"boot_id":"0d5b0e2c-8f4e-4c51-9a3e-2f6c1d7a9b10",'
          '"connections":4,"saved_unix_ms":1795000000000}\n')
    write("control_file", "unknown-length.dlm",
          '{"version":1,"identity":{"source":"ftp://ftp.example.org/pub/file.bin","len":null,"validator":null},'
          '"done":[{"start":0,"end":65536}],"durable":[],"boot_id":null,"connections":1,"saved_unix_ms":0}\n')
    write("settings", "bittorrent", "bittorrent.max_peers=80\nbittorrent.sequential=true\n"
          "bittorrent.connect_timeout=10s\nbittorrent.listen_port=6881\nbittorrent.upload_limit=1048576\n")
    write("settings", "unknown-key", "bittorrent.max_pears=80\nhttp.max_connections=4\n")
    write("tracker_reply", "failure", "d14:failure reason17:torrent not founde")
    write("tracker_reply", "dict-peers",
          "d8:completei3e10:incompletei1e8:intervali1800e12:min intervali60e"
          "5:peersld2:ip9:127.0.0.14:porti6881eed2:ip3:::14:porti51413eee"
          "15:warning message7:go slowe")
    write("tracker_reply", "compact-v6",
          b"d8:intervali900e6:peers60:e6:peers618:" + bytes(15) + b"\x01\x1a\xe1" + b"e")
    write("bencode", "dict", "d3:cow3:moo4:spam4:eggse")
    write("bencode", "list-int", "l4:spami42ei-3ee")
    write("bencode", "nested-info", "d4:infod6:lengthi12e4:name5:a.txtee")


# --- MSE/PE (Message Stream Encryption): A's bytes for dlm's responder with the fuzz target's fixed keys ----

MSE_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563", 16)


def rc4_keystream(key, n, skip=1024):
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 255
        s[i], s[j] = s[j], s[i]
    i = j = 0
    out = bytearray()
    for _ in range(skip + n):
        i = (i + 1) & 255
        j = (j + s[i]) & 255
        s[i], s[j] = s[j], s[i]
        out.append(s[(s[i] + s[j]) & 255])
    return bytes(out[skip:])


def mse_seeds():
    """dlm_fuzz::mse_respond: byte 0 is the mode (policy in bits 0-1; bit 7: no Ya prepended); A's private key
    is twenty 0x03 bytes, B's twenty 0x04 bytes, the served info-hash twenty 0xAB bytes."""
    xa, xb = int.from_bytes(b"\x03" * 20, "big"), int.from_bytes(b"\x04" * 20, "big")
    yb = pow(2, xb, MSE_P)
    s = pow(yb, xa, MSE_P).to_bytes(96, "big")
    skey = b"\xab" * 20
    sha1 = lambda *p: hashlib.sha1(b"".join(p)).digest()
    req23 = bytes(a ^ b for a, b in zip(sha1(b"req2", skey), sha1(b"req3", s)))
    handshake = b"\x13BitTorrent protocol" + bytes(8) + skey + b"-XX0001-fuzzfuzzfuzz"

    def step3(pad_a, provide, pad_c, ia):
        plain = bytes(8) + struct.pack(">IH", provide, len(pad_c)) + pad_c + struct.pack(">H", len(ia)) + ia
        ks = rc4_keystream(sha1(b"keyA", s, skey), len(plain))
        return pad_a + sha1(b"req1", s) + req23 + bytes(a ^ b for a, b in zip(plain, ks))

    write("mse_respond", "prefer-both-ia", b"\x00" + step3(b"", 3, b"", handshake))
    write("mse_respond", "require-rc4-pads", b"\x01" + step3(bytes(range(100)), 2, b"\x00" * 16, handshake))
    write("mse_respond", "disable-refused", b"\x02" + step3(b"", 3, b"", b""))
    write("mse_respond", "plaintext-handshake", b"\x80" + handshake + b"\x00\x00\x00\x01\x02")
    write("mse_respond", "garbage", b"\x00" + bytes((i * 37) & 255 for i in range(700)))


if __name__ == "__main__":
    header_seeds()
    ftp_seeds()
    s3_seeds()
    tracker_udp_seeds()
    local_seeds()
    node = dag_pb_seeds()
    car_seeds(node)
    bitswap_seeds(node)
    ipns_seeds()
    mse_seeds()
    print("seeds written under", CORPUS)
