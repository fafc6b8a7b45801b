// js: AWS SDK for JavaScript v3 (client-s3, lib-storage, s3-request-presigner) against E2E_ENDPOINT.
// Prints PASS/FAIL/SKIP lines; every write is checked at the origin via ../origin_check.py (batch mode).
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import path from "node:path";

import {
  S3Client,
  CreateBucketCommand,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  DeleteObjectCommand,
  CopyObjectCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const E2E = path.dirname(HERE);
const env = process.env;
const B = "e2e-js";
const MiB = 1024 * 1024;

let passed = 0, failed = 0, skipped = 0;
const oneLine = (s) => String(s).replace(/\s+/g, " ").slice(0, 400);
const ok = (n) => { passed++; console.log(`PASS ${n}`); };
const fail = (n, why) => { failed++; console.log(`FAIL ${n}: ${oneLine(why)}`); };
const skip = (n, why) => { skipped++; console.log(`SKIP ${n}: ${oneLine(why)}`); };
const sha256 = (b) => createHash("sha256").update(b).digest("hex");
const md5 = (b) => createHash("md5").update(b).digest("hex");
function assert(cond, msg) { if (!cond) throw new Error(msg); }

function client(secret = env.E2E_SECRET_KEY, extra = {}) {
  return new S3Client({
    endpoint: env.E2E_ENDPOINT,
    region: env.E2E_REGION || "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: env.E2E_ACCESS_KEY, secretAccessKey: secret },
    maxAttempts: 1,
    ...extra,
  });
}

// A long-lived `origin_check.py batch` process: one JSON request line in, one PASS/FAIL line out.
class Origin {
  constructor() {
    this.proc = spawn("python3", [path.join(E2E, "origin_check.py"), "batch"], { stdio: ["pipe", "pipe", "inherit"] });
    this.waiting = [];
    createInterface({ input: this.proc.stdout }).on("line", (l) => this.waiting.shift()?.(l));
  }
  ask(req) {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.proc.stdin.write(JSON.stringify({ ...req, key: "b64:" + Buffer.from(req.key).toString("base64"), name: "x" }) + "\n");
    });
  }
  async exists(bucket, key, sha) {
    const l = await this.ask({ op: "exists", bucket, key, sha256: sha });
    if (!l.startsWith("PASS")) throw new Error(l.replace(/^FAIL x: /, ""));
  }
  async absent(bucket, key) {
    const l = await this.ask({ op: "absent", bucket, key });
    if (!l.startsWith("PASS")) throw new Error(l.replace(/^FAIL x: /, ""));
  }
  close() { this.proc.stdin.end(); }
}

async function test(name, fn) {
  try {
    await fn();
    ok(name);
    return true;
  } catch (e) {
    fail(name, `${e.name || "Error"}: ${e.message}`);
    if (env.E2E_DEBUG) console.error(e);
    return false;
  }
}

async function bodyBytes(resp) {
  return Buffer.from(await resp.Body.transformToByteArray());
}

async function main() {
  const s3 = client();
  const origin = new Origin();

  if (!(await test("js/create-bucket", () => s3.send(new CreateBucketCommand({ Bucket: B }))))) {
    await origin.ask({ op: "mkbucket", bucket: B, key: "-" }); // carry on so the other tests still say something
  }

  const small = randomBytes(10000);
  await test("js/put-object-buffer", async () => {
    const r = await s3.send(new PutObjectCommand({
      Bucket: B, Key: "buf/small.bin", Body: small, ContentType: "application/x-js", Metadata: { from: "js" },
    }));
    assert(r.ETag.replaceAll('"', "") === md5(small), `ETag ${r.ETag} != md5`);
    await origin.exists(B, "buf/small.bin", sha256(small));
  });

  const streamed = randomBytes(300 * 1024 + 7);
  // A stream body is sent as aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER (x-amz-trailer: x-amz-checksum-crc32,
  // x-amz-decoded-content-length, Transfer-Encoding: chunked). The SDK needs to know the length: for a file
  // stream it finds it itself; a Readable of unknown length is refused client-side by PutObject (TypeError on
  // x-amz-decoded-content-length, SDK 3.940 and 3.1175 alike), so unknown lengths go through lib-storage below.
  await test("js/put-object-file-stream-no-content-length", async () => {
    const f = path.join(env.E2E_WORK, "js-stream.bin");
    writeFileSync(f, streamed);
    await s3.send(new PutObjectCommand({ Bucket: B, Key: "stream/unknown-length.bin", Body: createReadStream(f) }));
    await origin.exists(B, "stream/unknown-length.bin", sha256(streamed));
  });

  await test("js/put-object-stream-known-length", async () => {
    await s3.send(new PutObjectCommand({
      Bucket: B, Key: "stream/known-length.bin", Body: Readable.from([streamed]), ContentLength: streamed.length,
    }));
    await origin.exists(B, "stream/known-length.bin", sha256(streamed));
  });

  const big = randomBytes(12 * MiB + 12345);
  await test("js/lib-storage-upload-multipart-unknown-length", async () => {
    async function* gen() { for (let i = 0; i < big.length; i += MiB) yield big.subarray(i, i + MiB); }
    const up = new Upload({
      client: s3, params: { Bucket: B, Key: "upload/multi part.bin", Body: Readable.from(gen()) },
      partSize: 5 * MiB, queueSize: 2, leavePartsOnError: false,
    });
    const r = await up.done();
    assert(String(r.ETag).replaceAll('"', "").endsWith("-3"), `expected 3 parts, ETag ${r.ETag}`);
    await origin.exists(B, "upload/multi part.bin", sha256(big));
  });

  await test("js/get-object", async () => {
    const r = await s3.send(new GetObjectCommand({ Bucket: B, Key: "buf/small.bin" }));
    assert((await bodyBytes(r)).equals(small), "body differs");
    assert(r.ContentType === "application/x-js", `ContentType ${r.ContentType}`);
    assert(r.Metadata?.from === "js", `Metadata ${JSON.stringify(r.Metadata)}`);
    const r2 = await s3.send(new GetObjectCommand({ Bucket: B, Key: "upload/multi part.bin" }));
    assert(sha256(await bodyBytes(r2)) === sha256(big), "multipart body differs");
    const r3 = await s3.send(new GetObjectCommand({ Bucket: B, Key: "buf/small.bin", Range: "bytes=5-9" }));
    assert((await bodyBytes(r3)).equals(small.subarray(5, 10)), "range body differs");
    const h = await s3.send(new HeadObjectCommand({ Bucket: B, Key: "stream/unknown-length.bin" }));
    assert(h.ContentLength === streamed.length, `HEAD ContentLength ${h.ContentLength}`);
  });

  await test("js/list-objects-v2", async () => {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: B }));
    const keys = (r.Contents || []).map((c) => c.Key).sort();
    const want = ["buf/small.bin", "stream/known-length.bin", "stream/unknown-length.bin", "upload/multi part.bin"];
    for (const k of want) assert(keys.includes(k), `listing lacks ${k}: ${keys}`);
    const d = await s3.send(new ListObjectsV2Command({ Bucket: B, Delimiter: "/", MaxKeys: 2 }));
    const pre = (d.CommonPrefixes || []).map((p) => p.Prefix);
    assert(d.IsTruncated && pre.length === 2, `delimiter+MaxKeys 2: ${pre} truncated=${d.IsTruncated}`);
    const d2 = await s3.send(new ListObjectsV2Command({ Bucket: B, Delimiter: "/", ContinuationToken: d.NextContinuationToken }));
    assert((d2.CommonPrefixes || []).length === 1, `second page: ${JSON.stringify(d2.CommonPrefixes)}`);
  });

  await test("js/copy-object", async () => {
    await s3.send(new CopyObjectCommand({ Bucket: B, Key: "copy/c é+.bin", CopySource: `${B}/${encodeURIComponent("upload/multi part.bin")}` }));
    await origin.exists(B, "copy/c é+.bin", sha256(big));
  });

  await test("js/presigned-get-fetch", async () => {
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: "buf/small.bin" }), { expiresIn: 300 });
    assert(url.includes("X-Amz-Signature="), url);
    const r = await fetch(url);
    const b = Buffer.from(await r.arrayBuffer());
    assert(r.status === 200, `HTTP ${r.status}: ${b.toString().slice(0, 300)}`);
    assert(b.equals(small), "presigned GET body differs");
  });

  // Since 3.729 the presigner's default (requestChecksumCalculation WHEN_SUPPORTED) bakes the CRC32 of an
  // empty body into a PutObject URL (x-amz-checksum-crc32=AAAAAA==). S3 applies such x-amz-* parameters as
  // headers, so that URL only uploads an empty body (aws-sdk-js-v3#6994); AWS's advice is WHEN_REQUIRED.
  const presigner = client(env.E2E_SECRET_KEY, { requestChecksumCalculation: "WHEN_REQUIRED" });
  await test("js/presigned-put-fetch", async () => {
    const data = randomBytes(4321);
    const key = "presigned/put ~é&.bin";
    const url = await getSignedUrl(presigner, new PutObjectCommand({ Bucket: B, Key: key }), { expiresIn: 300 });
    const r = await fetch(url, { method: "PUT", body: data });
    assert(r.status === 200, `HTTP ${r.status}: ${(await r.text()).slice(0, 300)}`);
    await origin.exists(B, key, sha256(data));
  });

  await test("js/presigned-put-signed-checksum-enforced", async () => {
    const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: B, Key: "presigned/crc" }), { expiresIn: 300 });
    assert(url.includes("x-amz-checksum-crc32="), `the presigner pinned a checksum: ${url}`);
    const r = await fetch(url, { method: "PUT", body: randomBytes(100) });
    // The origin got the pinned checksum as a signed header and refused the body (s3s-fs may still leave the
    // file on disk after its BadDigest, a known s3s-fs gap, so only the refusal is asserted).
    assert(r.status === 400, `HTTP ${r.status}: ${(await r.text()).slice(0, 300)}`);
  });

  await test("js/neg-wrong-secret", async () => {
    const bad = client("not-the-right-secret");
    let err = null;
    try {
      await bad.send(new PutObjectCommand({ Bucket: B, Key: "neg/wrong-secret", Body: small }));
    } catch (e) { err = e; }
    assert(err, "PutObject with a wrong secret succeeded");
    assert(err.name === "SignatureDoesNotMatch" || err.Code === "SignatureDoesNotMatch", `got ${err.name}: ${err.message}`);
    await origin.absent(B, "neg/wrong-secret");
    err = null;
    try {
      // small, so the whole body fits in socket buffers and the client reads the 403 instead of EPIPE
      const f = path.join(env.E2E_WORK, "js-small.bin");
      writeFileSync(f, Buffer.from("must not be stored"));
      await bad.send(new PutObjectCommand({ Bucket: B, Key: "neg/wrong-secret-stream", Body: createReadStream(f) }));
    } catch (e) { err = e; }
    assert(err, "streaming PutObject with a wrong secret succeeded");
    // s3s-fs answers 403 before reading the aws-chunked body and closes, so node often sees EPIPE/ECONNRESET
    // while still writing; either way the request must be rejected and nothing stored.
    assert(err.name === "SignatureDoesNotMatch" || /EPIPE|ECONNRESET|socket hang up/.test(err.message),
      `streaming: got ${err.name}: ${err.message}`);
    await origin.absent(B, "neg/wrong-secret-stream");
  });

  await test("js/delete-object", async () => {
    await s3.send(new DeleteObjectCommand({ Bucket: B, Key: "stream/known-length.bin" }));
    await origin.absent(B, "stream/known-length.bin");
  });

  // awkward keys
  const keys = JSON.parse(spawnSync("python3", [path.join(E2E, "keys.py")], { encoding: "utf8" }).stdout);
  const data = randomBytes(777);
  for (const [name, key, limitation] of keys) {
    const n = `js/key/${name}`;
    // s3s-fs closes the connection after refusing these; a fresh client keeps that from hitting the next key
    const c = limitation ? client() : s3;
    try {
      await c.send(new PutObjectCommand({ Bucket: B, Key: key, Body: data }));
      const got = await bodyBytes(await c.send(new GetObjectCommand({ Bucket: B, Key: key })));
      assert(got.equals(data), "GetObject body differs");
      await origin.exists(B, key, sha256(data));
      const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: key }), { expiresIn: 300 });
      const r = await fetch(url);
      const b = Buffer.from(await r.arrayBuffer());
      assert(r.status === 200 && b.equals(data), `presigned GET: HTTP ${r.status} ${b.toString().slice(0, 200)}`);
      ok(n);
    } catch (e) {
      // SKIP only a known s3s-fs limitation that the origin itself shows when probed directly
      const probe = limitation ? await origin.ask({ op: "canput", bucket: B, key }) : "PASS";
      if (!probe.startsWith("PASS")) {
        skip(n, `${limitation} [origin directly: ${probe.replace(/^FAIL x: /, "").slice(-150)}]`);
      } else {
        fail(n, `${e.name}: ${e.message}`);
      }
    }
  }
  origin.close();
}

main()
  .catch((e) => fail("js/unexpected", e.stack || e))
  .finally(() => {
    console.log(`# ${passed} passed, ${failed} failed, ${skipped} skipped`);
    process.exitCode = failed ? 1 : 0;
  });
