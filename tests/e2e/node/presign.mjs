// Presigned URLs made by the JS SDK v3's presigner (@aws-sdk/s3-request-presigner), for the `browser` group:
// a web application's server side makes them and hands them to the page, as here.
//
//   node presign.mjs < request.json > urls.json
//   request: {"endpoint", "region", "accessKeyId", "secretAccessKey",
//             "urls": [{"method": "PUT"|"GET", "bucket", "key", "expiresIn"?}]}
//   answer:  ["url", ...] in the same order
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const s3 = new S3Client({
  endpoint: req.endpoint,
  region: req.region || "us-east-1",
  forcePathStyle: true,
  credentials: { accessKeyId: req.accessKeyId, secretAccessKey: req.secretAccessKey },
  // The default (WHEN_SUPPORTED) bakes the CRC32 of an empty body into a PutObject URL, so the URL could
  // only upload an empty body (aws-sdk-js-v3#6994); AWS's advice for presigned PUTs is WHEN_REQUIRED.
  requestChecksumCalculation: "WHEN_REQUIRED",
});

const out = [];
for (const u of req.urls) {
  const Cmd = u.method === "PUT" ? PutObjectCommand : GetObjectCommand;
  out.push(await getSignedUrl(s3, new Cmd({ Bucket: u.bucket, Key: u.key }), { expiresIn: u.expiresIn || 300 }));
}
process.stdout.write(JSON.stringify(out));
