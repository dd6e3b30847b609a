// dlm's IPFS test peer: one Helia light node on 127.0.0.1 that serves what it added over bitswap (libp2p TCP,
// noise, yamux, identify) and over trustless HTTP gateways (raw blocks, CARs, an IPNS record).
//
// Usage: node helia_node.mjs CONFIG        (CONFIG is a JSON object, or the path of a file holding one)
//
// CONFIG:
//   {
//     "listen": 0,                        libp2p TCP port on 127.0.0.1 (0: any free port)
//     "gateways": [{"port": 0}, {"port": 0, "corrupt": ["<cid>", ...]}],
//                                         one trustless gateway per entry; "corrupt" blocks are served with
//                                         their last byte flipped (raw and inside CARs), matched by multihash;
//                                         "corruptIpns": true serves the IPNS record with its last byte flipped
//     "add": [{"path": "/abs/file-or-dir", "cidVersion": 1, "rawLeaves": true, "chunkSize": 262144,
//              "layout": "balanced" | "trickle", "maxChildren": 174, "layerRepeat": 4,
//              "shardSplitThresholdBytes": 262144, "shardFanoutBits": 8,
//              "reduceSingleLeafToSelf": true, "wrap": false}],
//                                         a directory is added recursively; every field but "path" is optional
//                                         (defaults as above, from ipfs-unixfs-importer)
//     "ipns": false                       sign an IPNS record (/ipfs/<first added CID>) with the node's key
//   }
//
// Ready: once everything listens and is added, ONE line of JSON on stdout:
//   {"event":"ready","peerId":"12D3KooW…","multiaddrs":["/ip4/127.0.0.1/tcp/P/p2p/12D3KooW…"],
//    "gateways":["http://127.0.0.1:G",…],"added":[{"path":"/abs/file","cid":"bafy…"}],
//    "ipns":{"name":"k51…","peerIdName":"12D3KooW…","value":"/ipfs/bafy…"} | null}
// Nothing else is written to stdout. Each gateway request is logged to stderr as one JSON line:
//   {"event":"request","gateway":"http://127.0.0.1:G","method":"GET","url":"/ipfs/…?format=raw","status":200,"bytes":N}
// (bytes: body bytes sent). The node runs until SIGTERM/SIGINT.
//
// Gateway (https://specs.ipfs.tech/http-gateways/trustless-gateway/), blocks from the local blockstore only
// (offline: a missing block is a 404, or a truncated CAR once streaming has begun):
//   GET|HEAD /ipfs/{cid}[/path]  ?format=raw | Accept: application/vnd.ipld.raw   one block (of the resolved path)
//                                ?format=car | Accept: application/vnd.ipld.car   CARv1, roots=[cid], DFS order,
//                                  dups=n (dups=y if asked), dag-scope=all|entity|block, entity-bytes=from:to
//   GET|HEAD /ipns/{name}        ?format=ipns-record | Accept: application/vnd.ipfs.ipns-record
//   GET|HEAD /ipns/{name}[/path] with raw or car: as /ipfs/<record value>[/path]
// No format: 400 (strict trustless gateway).
import './node20-polyfill.mjs'

import { once } from 'node:events'
import { createReadStream, readFileSync, readdirSync, statSync } from 'node:fs'
import { createServer } from 'node:http'
import { basename, join } from 'node:path'

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { CarWriter } from '@ipld/car/writer'
import * as dagPb from '@ipld/dag-pb'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { peerIdFromPrivateKey, peerIdFromString, peerIdFromCID } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { createHeliaLight } from 'helia'
import { UnixFS } from 'ipfs-unixfs'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced, trickle } from 'ipfs-unixfs-importer/layout'
import { createIPNSRecord, marshalIPNSRecord } from 'ipns'
import { base36 } from 'multiformats/bases/base36'
import { CID } from 'multiformats/cid'

// Only the ready line goes to stdout; anything a library prints goes to stderr.
console.log = console.error
console.info = console.error

const RAW = 0x55
const DAG_PB = 0x70
const IDENTITY = 0x00
const IPNS_LIFETIME_MS = 24 * 60 * 60 * 1000

const CT_RAW = 'application/vnd.ipld.raw'
const CT_CAR = 'application/vnd.ipld.car'
const CT_IPNS = 'application/vnd.ipfs.ipns-record'

class HttpError extends Error {
  constructor (status, message) {
    super(message)
    this.status = status
  }
}

function fail (message) {
  process.stderr.write(`helia_node: ${message}\n`)
  process.exit(2)
}

function readConfig () {
  const arg = process.argv[2]
  if (arg == null) fail('usage: node helia_node.mjs CONFIG_JSON_OR_FILE')
  const text = arg.trimStart().startsWith('{') ? arg : readFileSync(arg, 'utf8')
  const config = JSON.parse(text)
  return {
    listen: config.listen ?? 0,
    gateways: config.gateways ?? [],
    add: config.add ?? [],
    ipns: config.ipns === true
  }
}

// ---- adding ----------------------------------------------------------------------------------------------------

function importerOptions (spec) {
  const options = {
    cidVersion: spec.cidVersion ?? 1,
    rawLeaves: spec.rawLeaves ?? true,
    chunker: fixedSize({ chunkSize: spec.chunkSize ?? 262144 }),
    wrapWithDirectory: spec.wrap === true
  }
  const layout = spec.layout ?? 'balanced'
  if (layout === 'balanced') {
    options.layout = balanced({ maxChildrenPerNode: spec.maxChildren ?? 174 })
  } else if (layout === 'trickle') {
    options.layout = trickle({ maxChildrenPerNode: spec.maxChildren ?? 174, layerRepeat: spec.layerRepeat ?? 4 })
  } else {
    fail(`unknown layout ${JSON.stringify(layout)} (balanced or trickle)`)
  }
  if (spec.shardSplitThresholdBytes != null) options.shardSplitThresholdBytes = spec.shardSplitThresholdBytes
  if (spec.shardFanoutBits != null) options.shardFanoutBits = spec.shardFanoutBits
  if (spec.reduceSingleLeafToSelf != null) options.reduceSingleLeafToSelf = spec.reduceSingleLeafToSelf
  return options
}

// Import candidates for a file or a directory tree: paths relative to the parent of `path`, so the directory
// itself is the root entry; entries sorted by name so the import is reproducible.
function * candidates (path, rel) {
  const st = statSync(path)
  if (st.isDirectory()) {
    const names = readdirSync(path).sort()
    if (names.length === 0) yield { path: rel }
    for (const name of names) yield * candidates(join(path, name), `${rel}/${name}`)
  } else {
    yield { path: rel, content: createReadStream(path) }
  }
}

async function addOne (fs, spec) {
  if (typeof spec.path !== 'string') fail('every "add" entry needs a "path"')
  const options = importerOptions(spec)
  const name = basename(spec.path)
  let root = null
  let last = null
  for await (const entry of fs.addAll(candidates(spec.path, name), options)) {
    last = entry
    if (entry.path === (options.wrapWithDirectory ? '' : name)) root = entry
  }
  const chosen = root ?? last
  if (chosen == null) fail(`nothing was added from ${spec.path}`)
  return { path: spec.path, cid: chosen.cid.toString() }
}

// ---- blocks and DAG walks --------------------------------------------------------------------------------------

async function getBlock (helia, cid) {
  if (cid.multihash.code === IDENTITY) return cid.multihash.digest
  try {
    const chunks = []
    let length = 0
    for await (const chunk of helia.blockstore.get(cid, { offline: true })) {
      chunks.push(chunk)
      length += chunk.length
    }
    if (chunks.length === 1) return chunks[0]
    const out = new Uint8Array(length)
    let at = 0
    for (const chunk of chunks) {
      out.set(chunk, at)
      at += chunk.length
    }
    return out
  } catch (err) {
    if (err?.name === 'NotFoundError' || err?.name === 'BlockNotFoundWhileOfflineError') return null
    throw err
  }
}

function decodePb (bytes) {
  const node = dagPb.decode(bytes)
  let fs = null
  try {
    fs = node.Data != null ? UnixFS.unmarshal(node.Data) : null
  } catch {
    fs = null
  }
  return { node, fs }
}

// Number of hex digits that prefix link names in a HAMT shard (2 for the default fanout of 256).
function hamtPadLength (fs) {
  return (Number(fs.fanout ?? 256n) - 1).toString(16).length
}

// Finds `name` in a HAMT shard rooted at `bytes`: returns { cid, chain } where chain is the sub-shard CIDs walked
// below the root shard (in order), or null. Searches every sub-shard, so no name hashing is needed; the chain to an
// entry is unique either way.
async function hamtLookup (helia, bytes, name) {
  const { node, fs } = decodePb(bytes)
  const pad = hamtPadLength(fs)
  for (const link of node.Links) {
    const linkName = link.Name ?? ''
    if (linkName.length === pad) {
      const child = await getBlock(helia, link.Hash)
      if (child == null) throw new HttpError(404, `block ${link.Hash} not found`)
      const found = await hamtLookup(helia, child, name)
      if (found != null) return { cid: found.cid, chain: [link.Hash, ...found.chain] }
    } else if (linkName.slice(pad) === name) {
      return { cid: link.Hash, chain: [] }
    }
  }
  return null
}

// Resolves `segments` below `root`: { cid, pathCids } where pathCids are the blocks needed to verify the path
// (root, directories, HAMT shards; not the terminal block).
async function resolvePath (helia, root, segments) {
  let cid = root
  const pathCids = []
  for (const segment of segments) {
    const bytes = await getBlock(helia, cid)
    if (bytes == null) throw new HttpError(404, `block ${cid} not found`)
    if (cid.code !== DAG_PB) throw new HttpError(404, `no link ${JSON.stringify(segment)}: ${cid} is not dag-pb`)
    pathCids.push(cid)
    const { node, fs } = decodePb(bytes)
    if (fs?.type === 'hamt-sharded-directory') {
      const found = await hamtLookup(helia, bytes, segment)
      if (found == null) throw new HttpError(404, `no link ${JSON.stringify(segment)} in ${cid}`)
      pathCids.push(...found.chain)
      cid = found.cid
    } else if (fs == null || fs.type === 'directory') {
      const link = node.Links.find((l) => l.Name === segment)
      if (link == null) throw new HttpError(404, `no link ${JSON.stringify(segment)} in ${cid}`)
      cid = link.Hash
    } else {
      throw new HttpError(404, `no link ${JSON.stringify(segment)}: ${cid} is a UnixFS ${fs.type}`)
    }
  }
  return { cid, pathCids }
}

// Parses one entity-bytes bound: an integer (negative: from the end) or '*' (end of file, only for `to`).
function parseBound (text, isTo) {
  if (isTo && text === '*') return null
  if (!/^-?\d+$/.test(text)) throw new HttpError(400, `bad entity-bytes bound ${JSON.stringify(text)}`)
  return Number(text)
}

function parseEntityBytes (value) {
  const parts = value.split(':')
  if (parts.length !== 2) throw new HttpError(400, `bad entity-bytes ${JSON.stringify(value)} (want from:to)`)
  return { from: parseBound(parts[0], false), to: parseBound(parts[1], true) }
}

// The entity's byte count when it is a byte array (UnixFS file or raw block), else null.
function entitySize (cid, bytes) {
  if (cid.code === RAW) return bytes.length
  if (cid.code !== DAG_PB) return null
  const { fs } = decodePb(bytes)
  if (fs == null || (fs.type !== 'file' && fs.type !== 'raw')) return null
  return Number(fs.fileSize())
}

// Resolves `from:to` against `size` as the spec says: inclusive, negatives from the end, '*' the end, clamped to
// the entity. Returns { from, to } (inclusive), 'empty' for a zero-length range, or throws 400 when the range lies
// entirely outside the entity.
function resolveRange (range, size) {
  let from = range.from < 0 ? size + range.from : range.from
  let to = range.to == null ? size - 1 : range.to < 0 ? size + range.to : range.to
  if (size === 0) return 'empty'
  if (from >= size || to < 0) {
    throw new HttpError(400, `entity-bytes ${range.from}:${range.to ?? '*'} is outside the entity (${size} bytes)`)
  }
  from = Math.max(from, 0)
  to = Math.min(to, size - 1)
  if (to < from) return 'empty'
  return { from, to }
}

// The DFS walker: calls `emit(cid, bytes)` for each block in order, once per CID unless `dups`.
class Walk {
  constructor (helia, dups, emit) {
    this.helia = helia
    this.dups = dups
    this.emit = emit
    this.seen = new Set()
    this.stopped = false
  }

  async load (cid) {
    const bytes = await getBlock(this.helia, cid)
    if (bytes == null) throw new MissingBlock(cid)
    return bytes
  }

  // Emits `cid` (skipping a repeat unless dups, and identity CIDs always); returns its bytes.
  async visit (cid, bytes) {
    if (this.stopped) throw new Stopped()
    bytes ??= await this.load(cid)
    const key = cid.multihash.bytes.toString()
    if (cid.multihash.code !== IDENTITY && (this.dups || !this.seen.has(key))) {
      this.seen.add(key)
      await this.emit(cid, bytes)
    }
    return bytes
  }

  isSeen (cid) {
    return !this.dups && this.seen.has(cid.multihash.bytes.toString())
  }

  // dag-scope=all: the whole DAG below cid.
  async all (cid) {
    if (this.isSeen(cid)) return
    const bytes = await this.visit(cid)
    if (cid.code !== DAG_PB) return
    for (const link of dagPb.decode(bytes).Links) await this.all(link.Hash)
  }

  // dag-scope=entity without a byte range.
  async entity (cid) {
    const bytes = await this.load(cid)
    if (cid.code !== DAG_PB) return void await this.visit(cid, bytes)
    const { fs } = decodePb(bytes)
    if (fs?.type === 'file' || fs?.type === 'raw') return await this.all(cid)
    if (fs?.type === 'hamt-sharded-directory') return await this.shards(cid, bytes)
    await this.visit(cid, bytes)
  }

  // A HAMT directory's shard nodes (not the entries they point at).
  async shards (cid, bytes) {
    if (this.isSeen(cid)) return
    bytes = await this.visit(cid, bytes)
    const { node, fs } = decodePb(bytes)
    const pad = hamtPadLength(fs)
    for (const link of node.Links) {
      if ((link.Name ?? '').length === pad) await this.shards(link.Hash)
    }
  }

  // The blocks of a UnixFS file needed for bytes [from, to] (inclusive); `offset` is where this node's bytes
  // start in the file.
  async range (cid, from, to, offset, bytes) {
    bytes = await this.visit(cid, bytes)
    if (cid.code !== DAG_PB) return
    const { node, fs } = decodePb(bytes)
    if (fs == null) return
    // Children follow the node's own inline data; blockSizes[i] is child i's byte count. A repeated child is
    // walked again (it may need other leaves this time); visit() still emits each block once unless dups.
    let start = offset + (fs.data?.length ?? 0)
    for (const [i, link] of node.Links.entries()) {
      const end = start + Number(fs.blockSizes[i] ?? 0n) // exclusive
      if (end > from && start <= to) await this.range(link.Hash, from, to, start)
      start = end
    }
  }
}

class MissingBlock extends Error {
  constructor (cid) {
    super(`block ${cid} not found`)
    this.cid = cid
  }
}

class Stopped extends Error {}

// ---- HTTP ------------------------------------------------------------------------------------------------------

// Which response the request asks for: 'raw', 'car', 'ipns-record' or null. `format` wins over Accept.
function responseFormat (url, accept) {
  const format = url.searchParams.get('format')
  if (format != null && format !== '') {
    if (format === 'raw' || format === 'car' || format === 'ipns-record') return format
    throw new HttpError(400, `unsupported format ${JSON.stringify(format)}`)
  }
  for (const item of (accept ?? '').split(',')) {
    const type = item.split(';')[0].trim().toLowerCase()
    if (type === CT_RAW) return 'raw'
    if (type === CT_CAR) return 'car'
    if (type === CT_IPNS) return 'ipns-record'
  }
  return null
}

// The CAR parameters asked for in Accept (application/vnd.ipld.car; version=1; order=dfs; dups=y) or the query.
function carParams (url, accept) {
  const params = {}
  for (const item of (accept ?? '').split(',')) {
    const [type, ...rest] = item.split(';').map((s) => s.trim())
    if (type.toLowerCase() !== CT_CAR) continue
    for (const p of rest) {
      const [k, v] = p.split('=').map((s) => s.trim().toLowerCase())
      if (k !== 'q') params[k] = v
    }
    break
  }
  for (const k of ['version', 'order', 'dups']) {
    const v = url.searchParams.get(`car-${k}`)
    if (v != null) params[k] = v.toLowerCase()
  }
  if (params.version != null && params.version !== '1') {
    throw new HttpError(400, `unsupported CAR version ${params.version} (only 1)`)
  }
  if (params.order != null && params.order !== 'dfs' && params.order !== 'unk') {
    throw new HttpError(400, `unsupported CAR order ${params.order} (dfs)`)
  }
  if (params.dups != null && params.dups !== 'y' && params.dups !== 'n') {
    throw new HttpError(400, `bad CAR dups ${params.dups}`)
  }
  return { dups: params.dups === 'y' }
}

function parseCid (text) {
  try {
    return CID.parse(text, text.startsWith('k') ? base36 : undefined)
  } catch {
    throw new HttpError(400, `invalid CID ${JSON.stringify(text)}`)
  }
}

function corruptKeySet (list) {
  return new Set((list ?? []).map((s) => parseCid(s).multihash.bytes.toString()))
}

function flipLastByte (bytes) {
  const copy = Uint8Array.from(bytes)
  if (copy.length > 0) copy[copy.length - 1] ^= 0xff
  return copy
}

function makeGateway (helia, gatewayConfig, ipns, log) {
  const corrupt = corruptKeySet(gatewayConfig.corrupt)
  const served = (cid, bytes) => corrupt.has(cid.multihash.bytes.toString()) ? flipLastByte(bytes) : bytes

  async function serveRaw (req, res, cid, head) {
    const bytes = await getBlock(helia, cid)
    if (bytes == null) throw new HttpError(404, `block ${cid} not found`)
    res.writeHead(200, {
      'Content-Type': CT_RAW,
      'Content-Length': bytes.length,
      'Content-Disposition': `attachment; filename="${cid}.bin"`,
      Etag: `"${cid}.raw"`,
      'Cache-Control': 'public, max-age=29030400, immutable',
      'X-Content-Type-Options': 'nosniff',
      Vary: 'Accept'
    })
    if (head) return res.end()
    res.end(served(cid, bytes))
  }

  async function serveCar (req, res, url, root, segments, head) {
    const { dups } = carParams(url, req.headers.accept)
    const entityBytes = url.searchParams.get('entity-bytes')
    let scope = url.searchParams.get('dag-scope') ?? 'all'
    if (!['all', 'entity', 'block'].includes(scope)) throw new HttpError(400, `bad dag-scope ${scope}`)
    const range = entityBytes != null ? parseEntityBytes(entityBytes) : null
    if (range != null) scope = 'entity'
    // Everything that decides the status happens before the head is sent: the path, the terminal block, the range.
    const rootBytes = await getBlock(helia, root)
    if (rootBytes == null) throw new HttpError(404, `block ${root} not found`)
    const { cid, pathCids } = await resolvePath(helia, root, segments)
    const terminal = await getBlock(helia, cid)
    if (terminal == null) throw new HttpError(404, `block ${cid} not found`)
    let byteRange = null
    if (range != null) {
      const size = entitySize(cid, terminal)
      if (size != null) {
        byteRange = resolveRange(range, size)
        if (byteRange === 'empty') scope = 'block'
      }
    }
    const etagKey = `${scope}.${entityBytes ?? ''}.${dups ? 'y' : 'n'}`
    res.writeHead(200, {
      'Content-Type': `${CT_CAR}; version=1; order=dfs; dups=${dups ? 'y' : 'n'}`,
      'Content-Disposition': `attachment; filename="${root}.car"`,
      Etag: `W/"${root}.car.${Buffer.from(etagKey).toString('base64url')}"`,
      'Cache-Control': 'public, max-age=29030400, immutable',
      'X-Content-Type-Options': 'nosniff',
      'X-Ipfs-Roots': [...pathCids, cid].map(String).join(','),
      Vary: 'Accept'
    })
    if (head) return res.end()

    const { writer, out } = CarWriter.create([root])
    let closed = false
    res.on('close', () => { closed = true })
    const pump = (async () => {
      for await (const chunk of out) {
        if (closed) continue
        if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')])
      }
    })()
    const walk = new Walk(helia, dups, async (c, bytes) => {
      if (closed) throw new Stopped()
      await writer.put({ cid: c, bytes: served(c, bytes) })
    })
    let error = null
    try {
      for (const c of pathCids) await walk.visit(c)
      if (scope === 'block') {
        await walk.visit(cid, terminal)
      } else if (scope === 'all') {
        await walk.all(cid)
      } else if (byteRange != null && byteRange !== 'empty') {
        await walk.range(cid, byteRange.from, byteRange.to, 0, terminal)
      } else {
        await walk.entity(cid)
      }
    } catch (err) {
      error = err
    }
    await writer.close()
    await pump
    if (error instanceof Stopped || closed) return
    if (error != null) {
      // Streaming has begun: a missing child block ends the response without the final chunk (spec: terminate).
      process.stderr.write(`helia_node: CAR ${root}: ${error.message}; truncating the response\n`)
      res.destroy()
      return
    }
    res.end()
  }

  async function serveIpnsRecord (req, res, head) {
    res.writeHead(200, {
      'Content-Type': CT_IPNS,
      'Content-Length': ipns.record.length,
      'Content-Disposition': `attachment; filename="${ipns.name}.ipns-record"`,
      'Cache-Control': 'public, max-age=60',
      'X-Content-Type-Options': 'nosniff',
      Vary: 'Accept'
    })
    if (head) return res.end()
    res.end(gatewayConfig.corruptIpns === true ? flipLastByte(ipns.record) : ipns.record)
  }

  function ipnsMatches (name) {
    if (ipns == null) return false
    try {
      const peerId = name.startsWith('1') || name.startsWith('Qm')
        ? peerIdFromString(name)
        : peerIdFromCID(CID.parse(name, name.startsWith('k') ? base36 : undefined))
      return peerId.equals(ipns.peerId)
    } catch {
      return false
    }
  }

  async function handle (req, res) {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'only GET and HEAD')
    const head = req.method === 'HEAD'
    const url = new URL(req.url, 'http://127.0.0.1')
    const parts = url.pathname.split('/').slice(1).map((s) => decodeURIComponent(s))
    if (parts.length > 2 && parts[parts.length - 1] === '') parts.pop() // trailing slash
    const [namespace, id, ...segments] = parts
    if ((namespace !== 'ipfs' && namespace !== 'ipns') || id == null || id === '') {
      throw new HttpError(404, 'want /ipfs/{cid}[/path] or /ipns/{name}')
    }
    const format = responseFormat(url, req.headers.accept)
    if (format == null) {
      throw new HttpError(400, 'trustless gateway: ask for format=raw|car|ipns-record or an Accept of those types')
    }
    let root
    if (namespace === 'ipns') {
      if (!ipnsMatches(id)) throw new HttpError(404, `no IPNS record for ${id}`)
      if (format === 'ipns-record') {
        if (segments.length > 0) throw new HttpError(400, 'an IPNS record has no path')
        return await serveIpnsRecord(req, res, head)
      }
      root = CID.parse(ipns.value.slice('/ipfs/'.length))
    } else {
      if (format === 'ipns-record') throw new HttpError(400, 'format=ipns-record needs /ipns/{name}')
      root = parseCid(id)
    }
    if (req.headers['cache-control']?.includes('only-if-cached') && await getBlock(helia, root) == null) {
      throw new HttpError(412, `block ${root} is not in this gateway's blockstore`)
    }
    if (format === 'raw') {
      const { cid } = await resolvePath(helia, root, segments)
      return await serveRaw(req, res, cid, head)
    }
    return await serveCar(req, res, url, root, segments, head)
  }

  const server = createServer((req, res) => {
    let bytes = 0
    const write = res.write.bind(res)
    const end = res.end.bind(res)
    res.write = (chunk, ...rest) => {
      if (chunk != null && typeof chunk !== 'function') bytes += chunk.length
      return write(chunk, ...rest)
    }
    res.end = (chunk, ...rest) => {
      if (chunk != null && typeof chunk !== 'function') bytes += chunk.length
      return end(chunk, ...rest)
    }
    res.on('close', () => {
      log({ method: req.method, url: req.url, status: res.statusCode, bytes })
    })
    handle(req, res).catch((err) => {
      const status = err instanceof HttpError ? err.status : 500
      if (!(err instanceof HttpError)) process.stderr.write(`helia_node: ${req.url}: ${err.stack ?? err}\n`)
      if (res.headersSent) return res.destroy()
      const body = `${err.message}\n`
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) })
      res.end(req.method === 'HEAD' ? undefined : body)
    })
  })
  return server
}

// ---- main ------------------------------------------------------------------------------------------------------

async function main () {
  const config = readConfig()
  const privateKey = await generateKeyPair('Ed25519')
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ routers: [] }), {
    privateKey,
    addresses: { listen: [`/ip4/127.0.0.1/tcp/${config.listen}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  }))
  await helia.start()

  const fs = unixfs(helia)
  const added = []
  for (const spec of config.add) added.push(await addOne(fs, spec))

  let ipns = null
  if (config.ipns) {
    if (added.length === 0) fail('"ipns": true needs something in "add" (the record points at the first)')
    const value = `/ipfs/${added[0].cid}`
    const record = await createIPNSRecord(privateKey, value, 1n, IPNS_LIFETIME_MS)
    const peerId = peerIdFromPrivateKey(privateKey)
    ipns = {
      peerId,
      name: peerId.toCID().toString(base36),
      value,
      record: marshalIPNSRecord(record)
    }
  }

  const gateways = []
  for (const gatewayConfig of config.gateways) {
    let origin = null
    const server = makeGateway(helia, gatewayConfig, ipns, (entry) => {
      process.stderr.write(`${JSON.stringify({ event: 'request', gateway: origin, ...entry })}\n`)
    })
    server.listen(gatewayConfig.port ?? 0, '127.0.0.1')
    await once(server, 'listening')
    origin = `http://127.0.0.1:${server.address().port}`
    gateways.push({ server, origin })
  }

  const peerId = helia.libp2p.peerId.toString()
  const multiaddrs = helia.libp2p.getMultiaddrs().map((ma) => {
    const text = ma.toString()
    return text.includes('/p2p/') ? text : `${text}/p2p/${peerId}`
  })
  const ready = {
    event: 'ready',
    peerId,
    multiaddrs,
    gateways: gateways.map((g) => g.origin),
    added,
    ipns: ipns == null ? null : { name: ipns.name, peerIdName: ipns.peerId.toString(), value: ipns.value }
  }
  process.stdout.write(`${JSON.stringify(ready)}\n`)

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    setTimeout(() => process.exit(0), 2000).unref()
    for (const g of gateways) g.server.close()
    for (const g of gateways) g.server.closeAllConnections()
    await helia.stop().catch(() => {})
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((err) => {
  process.stderr.write(`helia_node: ${err.stack ?? err}\n`)
  process.exit(1)
})
