// dlm's IPFS benchmark client: a second Helia light node that dials one peer and fetches a UnixFS file from it
// over bitswap (libp2p TCP, noise, yamux), writing it to a file.
//
// Usage: node helia_fetch.mjs --peer MULTIADDR --cid CID --out FILE [--timeout-ms 600000]
//
// MULTIADDR must end in /p2p/<peer id> (the "multiaddrs" of helia_node.mjs's or kubo_node.py's ready line).
// On success prints ONE line of JSON on stdout and exits 0:
//   {"event":"done","bytes":N,"ms":T,"dialMs":D}
// (ms: from the dial to the last byte written, including the dial; dialMs: the dial alone). On failure prints
// {"event":"failed","error":"…"} and exits 1. The node listens nowhere and dials nothing but MULTIADDR.
import './node20-polyfill.mjs'

import { once } from 'node:events'
import { createWriteStream } from 'node:fs'

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createHeliaLight } from 'helia'
import { CID } from 'multiformats/cid'

console.log = console.error
console.info = console.error

function parseArgs (argv) {
  const args = { timeoutMs: 600000 }
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]]
    if (value == null) usage(`${flag} needs a value`)
    if (flag === '--peer') args.peer = value
    else if (flag === '--cid') args.cid = value
    else if (flag === '--out') args.out = value
    else if (flag === '--timeout-ms') args.timeoutMs = Number(value)
    else usage(`unknown argument ${flag}`)
  }
  if (args.peer == null || args.cid == null || args.out == null) usage('--peer, --cid and --out are required')
  return args
}

function usage (message) {
  process.stderr.write(`helia_fetch: ${message}\nusage: node helia_fetch.mjs --peer MULTIADDR --cid CID --out FILE [--timeout-ms MS]\n`)
  process.exit(2)
}

async function main () {
  const args = parseArgs(process.argv.slice(2))
  const cid = CID.parse(args.cid)
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ routers: [] }), {
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  }))
  await helia.start()
  const signal = AbortSignal.timeout(args.timeoutMs)

  const started = performance.now()
  await helia.libp2p.dial(multiaddr(args.peer), { signal })
  const dialMs = performance.now() - started

  const out = createWriteStream(args.out)
  let bytes = 0
  for await (const chunk of unixfs(helia).cat(cid, { signal })) {
    bytes += chunk.length
    if (!out.write(chunk)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
  const ms = performance.now() - started

  process.stdout.write(`${JSON.stringify({ event: 'done', bytes, ms: Math.round(ms), dialMs: Math.round(dialMs) })}\n`)
  setTimeout(() => process.exit(0), 2000).unref()
  await helia.stop().catch(() => {})
  process.exit(0)
}

main().catch((err) => {
  process.stdout.write(`${JSON.stringify({ event: 'failed', error: String(err?.message ?? err) })}\n`)
  process.stderr.write(`helia_fetch: ${err.stack ?? err}\n`)
  process.exit(1)
})
