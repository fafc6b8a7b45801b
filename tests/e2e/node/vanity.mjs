// vanity/js-*: the JS SDK v3 with its DEFAULT addressing (no forcePathStyle) against the proxy by name
// (E2E_VANITY_ENDPOINT, http://s3.vanity.test:PORT), so every bucket operation goes virtual-hosted:
// Host vbkt-js.s3.vanity.test:PORT, only the key in the path. Run by vanity_test.py.
//
// Each test checks its result at the origin (../origin_check.py batch, path-style at 127.0.0.1 with the
// origin's keys) and that the SDK really sent it virtual-hosted: a middleware at the end of the
// finalizeRequest step (after signing, so what goes on the wire) records host and path of every request.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";

import {
  S3Client,
  CreateBucketCommand,
  DeleteBucketCommand,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListBucketsCommand,
  DeleteObjectCommand,
  CopyObjectCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const E2E = path.dirname(HERE);
const env = process.env;
const ENDPOINT = env.E2E_VANITY_ENDPOINT;
const DOMAIN = new URL(ENDPOINT).hostname;
const PORT = new URL(ENDPOINT).port;
const B = "vbkt-js";
const DOTTED = "my.dotted.vbkt";

let passed = 0, failed = 0;
const oneLine = (s) => String(s).replace(/\s+/g, " ").slice(0, 400);
const ok = (n) => { passed++; console.log(`PASS ${n}`); };
const fail = (n, why) => { failed++; console.log(`FAIL ${n}: ${oneLine(why)}`); };
const sha256 = (b) => createHash("sha256").update(b).digest("hex");
const md5 = (b) => createHash("md5").update(b).digest("hex");
function assert(cond, msg) { if (!cond) throw new Error(msg); }
// Code and Message of an S3 XML error, never its SignatureProvided or StringToSign.
const s3Error = (text) => {
  const c = /<Code>([^<]*)<\/Code>/.exec(text), m = /<Message>([^<]*)<\/Message>/.exec(text);
  return c ? `${c[1]}: ${m ? m[1].slice(0, 160) : ""}` : JSON.stringify(text.slice(0, 80));
};

// Every request the SDK put on the wire: [method, host header, path, query, headers].
let wire = [];
function client(extra = {}) {
  const c = new S3Client({
    endpoint: ENDPOINT,
    region: env.E2E_REGION || "us-east-1",
    credentials: { accessKeyId: env.E2E_ACCESS_KEY, secretAccessKey: env.E2E_SECRET_KEY },
    maxAttempts: 1,
    ...extra,
  });
  c.middlewareStack.add(
    (next) => async (args) => {
      const r = args.request;
      wire.push([r.method, r.headers.host || `${r.hostname}${r.port ? ":" + r.port : ""}`, r.path, r.query || {}, { ...r.headers }]);
      return next(args);
    },
    { step: "finalizeRequest", priority: "low", name: "e2eWireRecorder" },
  );
  return c;
}

// All requests since the last call went to `bucket`'s virtual host (bucket null: the bare domain) with
// exactly these paths (the key, never the bucket, in the path).
function expectWire(bucket, paths) {
  const seen = wire;
  wire = [];
  const host = `${bucket ? bucket + "." : ""}${DOMAIN}:${PORT}`;
  assert(seen.length === paths.length, `expected ${paths.length} request(s), the SDK sent ${seen.length}: ${JSON.stringify(seen)}`);
  seen.forEach(([m, h, p], i) => {
    assert(h === host, `${m} ${p} went to Host ${h}, not the virtual host ${host}`);
    assert(p === paths[i], `${m} to ${h} had path ${p}, expected ${paths[i]} (key only)`);
  });
}

// A URL minted for a virtual host: its host and path.
function expectUrl(url, bucket, p) {
  const u = new URL(url);
  assert(u.host === `${bucket}.${DOMAIN}:${PORT}`, `presigned URL host ${u.host}, expected ${bucket}.${DOMAIN}:${PORT}: ${url}`);
  assert(u.pathname === p, `presigned URL path ${u.pathname}, expected ${p}`);
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
  async must(req) {
    const l = await this.ask(req);
    if (!l.startsWith("PASS")) throw new Error(l.replace(/^FAIL x: /, ""));
  }
  exists(bucket, key, sha) { return this.must({ op: "exists", bucket, key, sha256: sha }); }
  absent(bucket, key) { return this.must({ op: "absent", bucket, key }); }
  bucket(bucket) { return this.must({ op: "bucket", bucket, key: "-" }); }
  noBucket(bucket) { return this.must({ op: "nobucket", bucket, key: "-" }); }
  close() { this.proc.stdin.end(); }
}

async function test(name, fn) {
  wire = [];
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

const bodyBytes = async (resp) => Buffer.from(await resp.Body.transformToByteArray());

async function main() {
  const s3 = client();
  const origin = new Origin();

  if (!(await test("vanity/js-create-bucket", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: B }));
    expectWire(B, ["/"]);
    await origin.bucket(B);
  }))) {
    await origin.ask({ op: "mkbucket", bucket: B, key: "-" }); // carry on so the other tests still say something
  }

  const small = randomBytes(10000);
  await test("vanity/js-put-object-buffer", async () => {
    const r = await s3.send(new PutObjectCommand({ Bucket: B, Key: "buf/small.bin", Body: small, ContentType: "application/x-js" }));
    expectWire(B, ["/buf/small.bin"]);
    assert(r.ETag.replaceAll('"', "") === md5(small), `ETag ${r.ETag} != md5`);
    await origin.exists(B, "buf/small.bin", sha256(small));
  });

  // A file stream goes as aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER (Transfer-Encoding: chunked).
  const streamed = randomBytes(300 * 1024 + 7);
  await test("vanity/js-put-object-stream", async () => {
    const f = path.join(env.E2E_WORK, "vanity-js-stream.bin");
    writeFileSync(f, streamed);
    await s3.send(new PutObjectCommand({ Bucket: B, Key: "stream/s.bin", Body: createReadStream(f) }));
    const sha = wire[0]?.[4]["x-amz-content-sha256"];
    assert(sha === "STREAMING-UNSIGNED-PAYLOAD-TRAILER", `a stream body went with x-amz-content-sha256 ${sha}`);
    expectWire(B, ["/stream/s.bin"]);
    await origin.exists(B, "stream/s.bin", sha256(streamed));
  });

  await test("vanity/js-get-object", async () => {
    const r = await s3.send(new GetObjectCommand({ Bucket: B, Key: "buf/small.bin" }));
    assert((await bodyBytes(r)).equals(small), "body differs");
    assert(r.ContentType === "application/x-js", `ContentType ${r.ContentType}`);
    const r2 = await s3.send(new GetObjectCommand({ Bucket: B, Key: "buf/small.bin", Range: "bytes=5-9" }));
    assert((await bodyBytes(r2)).equals(small.subarray(5, 10)), "range body differs");
    expectWire(B, ["/buf/small.bin", "/buf/small.bin"]);
  });

  await test("vanity/js-head-object", async () => {
    const h = await s3.send(new HeadObjectCommand({ Bucket: B, Key: "stream/s.bin" }));
    assert(h.ContentLength === streamed.length, `HEAD ContentLength ${h.ContentLength}`);
    expectWire(B, ["/stream/s.bin"]);
  });

  await test("vanity/js-list-objects-v2", async () => {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: B }));
    const keys = (r.Contents || []).map((c) => c.Key).sort();
    assert(JSON.stringify(keys) === JSON.stringify(["buf/small.bin", "stream/s.bin"]), `listing: ${keys}`);
    const d = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: "b", Delimiter: "/" }));
    const pre = (d.CommonPrefixes || []).map((p) => p.Prefix);
    assert(JSON.stringify(pre) === '["buf/"]' && !d.Contents, `prefix b, delimiter /: ${JSON.stringify(d)}`);
    expectWire(B, ["/", "/"]);
  });

  await test("vanity/js-list-buckets-bare-domain", async () => {
    const r = await s3.send(new ListBucketsCommand({}));
    const names = (r.Buckets || []).map((b) => b.Name);
    assert(names.includes(B), `ListBuckets lacks ${B}: ${names}`);
    expectWire(null, ["/"]);
  });

  const awkward = "dir/a b+c=d é.txt";
  await test("vanity/js-copy-object", async () => {
    await s3.send(new CopyObjectCommand({ Bucket: B, Key: awkward, CopySource: `${B}/buf/small.bin` }));
    expectWire(B, ["/" + encodeURIComponent("dir/a b+c=d é.txt").replaceAll("%2F", "/")]);
    await origin.exists(B, awkward, sha256(small));
    const got = await bodyBytes(await s3.send(new GetObjectCommand({ Bucket: B, Key: awkward })));
    assert(got.equals(small), "GetObject of the copy differs");
  });

  await test("vanity/js-presigned-get-fetch", async () => {
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: awkward }), { expiresIn: 300 });
    expectUrl(url, B, "/dir/a%20b%2Bc%3Dd%20%C3%A9.txt");
    const r = await fetch(url);
    const b = Buffer.from(await r.arrayBuffer());
    assert(r.status === 200, `HTTP ${r.status}: ${s3Error(b.toString())}`);
    assert(b.equals(small), "presigned GET body differs");
  });

  // WHEN_REQUIRED: otherwise the presigner pins the CRC32 of an empty body in a PutObject URL (see test.mjs).
  const presigner = client({ requestChecksumCalculation: "WHEN_REQUIRED" });
  await test("vanity/js-presigned-put-fetch", async () => {
    const data = randomBytes(4321);
    const url = await getSignedUrl(presigner, new PutObjectCommand({ Bucket: B, Key: "presigned/put.bin" }), { expiresIn: 300 });
    expectUrl(url, B, "/presigned/put.bin");
    const r = await fetch(url, { method: "PUT", body: data });
    assert(r.status === 200, `HTTP ${r.status}: ${s3Error(await r.text())}`);
    await origin.exists(B, "presigned/put.bin", sha256(data));
  });

  await test("vanity/js-delete-object", async () => {
    for (const k of ["buf/small.bin", "stream/s.bin", awkward, "presigned/put.bin"]) {
      await s3.send(new DeleteObjectCommand({ Bucket: B, Key: k }));
      await origin.absent(B, k);
    }
    expectWire(B, ["/buf/small.bin", "/stream/s.bin", "/dir/a%20b%2Bc%3Dd%20%C3%A9.txt", "/presigned/put.bin"]);
  });

  await test("vanity/js-delete-bucket", async () => {
    await s3.send(new DeleteBucketCommand({ Bucket: B }));
    expectWire(B, ["/"]);
    await origin.noBucket(B);
  });

  // A dotted bucket: SDK 3.940's endpoint rules keep a custom endpoint's dotted bucket path-style even over
  // http (isVirtualHostableS3Bucket(Bucket, false)), so this shows path-style on the bare domain works with
  // the vanity settings on. boto3-dotted-bucket covers a dotted bucket virtual-hosted.
  await test("vanity/js-dotted-bucket-path-style-on-domain", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: DOTTED }));
    await origin.bucket(DOTTED);
    const data = randomBytes(2000);
    await s3.send(new PutObjectCommand({ Bucket: DOTTED, Key: "d/x.bin", Body: data }));
    await origin.exists(DOTTED, "d/x.bin", sha256(data));
    const got = await bodyBytes(await s3.send(new GetObjectCommand({ Bucket: DOTTED, Key: "d/x.bin" })));
    assert(got.equals(data), "GetObject body differs");
    const l = await s3.send(new ListObjectsV2Command({ Bucket: DOTTED }));
    assert((l.Contents || []).map((c) => c.Key).join() === "d/x.bin", `listing: ${JSON.stringify(l.Contents)}`);
    await s3.send(new DeleteObjectCommand({ Bucket: DOTTED, Key: "d/x.bin" }));
    await origin.absent(DOTTED, "d/x.bin");
    await s3.send(new DeleteBucketCommand({ Bucket: DOTTED }));
    await origin.noBucket(DOTTED);
    const d = `/${DOTTED}`;
    expectWire(null, [`${d}/`, `${d}/d/x.bin`, `${d}/d/x.bin`, `${d}/`, `${d}/d/x.bin`, `${d}/`]);
  });

  origin.close();
}

main()
  .catch((e) => fail("vanity/js-unexpected", e.stack || e))
  .finally(() => {
    console.log(`# js: ${passed} passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  });
