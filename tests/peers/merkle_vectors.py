"""BEP 52 Merkle test vectors for dlm-bittorrent's unit tests, computed with hashlib alone.

A full binary tree: leaves are SHA-256 of 16 KiB blocks, padded with 32 zero bytes up to the width, each node
the SHA-256 of its two children. Run `python3 tests/peers/merkle_vectors.py`; the values are pasted into
`dlm-bittorrent/src/metainfo_v2.rs` (tests).
"""
import hashlib
H=lambda b: hashlib.sha256(b).digest()
def root(leaves, width):
    while len(leaves) < width: leaves.append(b"\0"*32)
    while len(leaves) > 1:
        leaves=[H(leaves[i]+leaves[i+1]) for i in range(0,len(leaves),2)]
    return leaves[0]
data=bytes(i%251 for i in range(40000))
blocks=[H(data[i:i+16384]) for i in range(0,len(data),16384)]
print("file_root 40000:", root(list(blocks),4).hex())
# 100000 bytes, piece 32768: 7 blocks -> layer of 4 pieces (2 leaves each), root over 8 leaves
data2=bytes((i*7)%253 for i in range(100000))
b2=[H(data2[i:i+16384]) for i in range(0,len(data2),16384)]
layer=[root(b2[i:i+2],2) for i in range(0,len(b2),2)]
print("layer:", [x.hex() for x in layer])
print("root 100000:", root(list(b2),8).hex())
