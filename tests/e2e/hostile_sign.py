"""A small SigV4 / SigV2 signer over raw bytes, for the `hostile` group.

Everything here works on the request as bytes: the test builds the exact bytes it will write to the socket,
computes the canonical form itself (S3's rules, as the AWS documentation and botocore give them), and can
sign a canonical form that differs from what it sends (to show that two byte strings must not share one).
No HTTP library is involved, so nothing is normalised behind the test's back.

SigV4 canonical request (S3): METHOD, the path percent-decoded once and encoded once ('/' kept, never
normalised), the query pairs decoded and re-encoded then sorted by key then value, the signed headers
(lowercase name, value trimmed with inner runs of whitespace collapsed, repeated values joined by ','), the
signed header names, the payload line.
<https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>

SigV2 string to sign: VERB, Content-MD5, Content-Type, Date (or Expires, or empty when x-amz-date is sent),
the x-amz-* headers (lowercase, sorted, values joined by ','), the resource (the path as sent plus the
sub-resources in the query, decoded, sorted).
<https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html>
"""

import base64
import hashlib
import hmac
import time

UNSIGNED = b"UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest().encode()
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_HEX = b"0123456789abcdefABCDEF"

# S3's SigV2 sub-resources (those in the CanonicalizedResource), as the proxy and botocore list them.
V2_SUBRESOURCES = frozenset(
    """accelerate acl analytics attributes cors defaultObjectAcl delete encryption intelligent-tiering
    inventory legal-hold lifecycle location logging metrics notification object-lock ownershipControls
    partNumber policy policyStatus publicAccessBlock replication requestPayment response-cache-control
    response-content-disposition response-content-encoding response-content-language response-content-type
    response-expires restore retention select select-type storageClass tagging torrent uploadId uploads
    versionId versioning versions website""".split()
)


def b(x):
    return x if isinstance(x, bytes) else str(x).encode("utf-8")


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest().encode()


def amz_now(t=None):
    """(x-amz-date, scope date) for time t (default now)."""
    tm = time.gmtime(time.time() if t is None else t)
    return time.strftime("%Y%m%dT%H%M%SZ", tm).encode(), time.strftime("%Y%m%d", tm).encode()


def http_date(t=None):
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() if t is None else t)).encode()


def pct_decode(s):
    """Percent-decode once; a '%' not followed by two hex digits stays as is."""
    s = b(s)
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == 0x25 and i + 2 < len(s) and s[i + 1] in _HEX and s[i + 2] in _HEX:
            out.append(int(s[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def uri_encode(data, slash=False):
    out = []
    for c in b(data):
        if c in _UNRESERVED or (slash and c == 0x2F):
            out.append(chr(c))
        else:
            out.append("%%%02X" % c)
    return "".join(out).encode()


def split_target(target):
    """(path, query) of a request target; absolute-form targets lose their scheme and authority."""
    target = b(target)
    if b"://" in target.split(b"?", 1)[0]:
        rest = target.split(b"://", 1)[1]
        i = rest.find(b"/")
        target = rest[i:] if i >= 0 else b"/"
    if not target.startswith(b"/") and target != b"*":
        return b"", b""  # authority-form (CONNECT host:port): no path, canonical URI "/"
    path, _, query = target.partition(b"?")
    return path, query


def canonical_uri(path):
    return uri_encode(pct_decode(path), slash=True) if path else b"/"


def query_pairs(query):
    """[(raw key, raw value)] in wire order; empty pieces dropped."""
    out = []
    for piece in b(query).split(b"&"):
        if not piece:
            continue
        k, _, v = piece.partition(b"=")
        out.append((k, v))
    return out


def canonical_query(query, skip=()):
    pairs = [
        (uri_encode(pct_decode(k)), uri_encode(pct_decode(v))) for k, v in query_pairs(query) if pct_decode(k) not in skip
    ]
    pairs.sort()
    return b"&".join(k + b"=" + v for k, v in pairs)


def canonical_value(v):
    return b" ".join(w for w in b(v).replace(b"\t", b" ").replace(b"\r", b" ").replace(b"\n", b" ").split(b" ") if w)


def _hmac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def signing_key(secret, date, region, service=b"s3"):
    k = _hmac(b"AWS4" + b(secret), b(date))
    k = _hmac(k, b(region))
    k = _hmac(k, b(service))
    return _hmac(k, b"aws4_request")


def canonical_request_v4(method, path, canon_query, headers, signed_names, payload_line, overrides=None):
    """headers: [(name, value)] as on the wire. signed_names: list, used in the given order (repeats too).
    overrides: {lowercase name: value} to sign a value other than the one sent."""
    overrides = overrides or {}
    lines = []
    for name in signed_names:
        name = b(name)
        if name in overrides:
            value = b(overrides[name])
        else:
            value = b",".join(canonical_value(v) for n, v in headers if b(n).lower() == name)
        lines.append(name + b":" + value + b"\n")
    return b"\n".join(
        [
            b(method),
            canonical_uri(path),
            canon_query,
            b"".join(lines),
            b";".join(b(n) for n in signed_names),
            b(payload_line),
        ]
    )


def sign_v4_string(secret, amz_date, scope_date, region, creq, service=b"s3"):
    scope = b"/".join([b(scope_date), b(region), b(service), b"aws4_request"])
    sts = b"\n".join([b"AWS4-HMAC-SHA256", b(amz_date), scope, hashlib.sha256(creq).hexdigest().encode()])
    return hmac.new(signing_key(secret, scope_date, region, service), sts, hashlib.sha256).hexdigest().encode()


def sign_v2(secret, sts):
    return base64.b64encode(hmac.new(b(secret), b(sts), hashlib.sha1).digest())


def string_to_sign_v2(method, path, query, headers, date_line, overrides=None):
    """headers: [(name, value)] as sent (all values of a name count, as S3 joins them); date_line: the third
    line (Date value, Expires, or b'' when x-amz-date is sent); overrides: {lowercase name: value}."""
    overrides = overrides or {}

    def first(name):
        if name in overrides:
            return b(overrides[name])
        for n, v in headers:
            if b(n).lower() == name:
                return b(v).strip()
        return b""

    amz = {}
    for n, v in headers:
        ln = b(n).lower()
        if ln.startswith(b"x-amz-"):
            amz.setdefault(ln, []).append(canonical_value(v))
    for n, v in overrides.items():
        if n.startswith(b"x-amz-"):
            amz[n] = [b(v)]
    amz_lines = b"".join(n + b":" + b",".join(vs) + b"\n" for n, vs in sorted(amz.items()))
    subs = []
    for k, v in query_pairs(query):
        dk = pct_decode(k)
        if dk.decode("latin-1") in V2_SUBRESOURCES:
            dv = b(overrides.get(b"?" + dk, pct_decode(v)))
            subs.append((dk, dv))
    subs.sort(key=lambda kv: kv[0])
    resource = (path or b"/") + b"".join(
        (b"?" if i == 0 else b"&") + k + ((b"=" + v) if v else b"") for i, (k, v) in enumerate(subs)
    )
    return b"\n".join([b(method), first(b"content-md5"), first(b"content-type"), b(date_line), amz_lines + resource])


class Req:
    """One HTTP/1.1 request as bytes: request line, headers in order, body."""

    def __init__(self, method, target, headers=None, body=b"", version=b"HTTP/1.1"):
        self.method = b(method)
        self.target = b(target)
        self.headers = [(b(n), b(v)) for n, v in (headers or [])]
        self.body = b(body)
        self.version = b(version)

    def add(self, name, value):
        self.headers.append((b(name), b(value)))
        return self

    def get(self, name):
        for n, v in self.headers:
            if n.lower() == b(name).lower():
                return v
        return None

    def drop(self, name):
        self.headers = [(n, v) for n, v in self.headers if n.lower() != b(name).lower()]
        return self

    def set(self, name, value):
        """Replace every header of that name by one (kept at the first one's place) or append it."""
        for i, (n, _) in enumerate(self.headers):
            if n.lower() == b(name).lower():
                self.headers[i] = (b(name), b(value))
                self.headers = self.headers[: i + 1] + [
                    (n2, v2) for n2, v2 in self.headers[i + 1 :] if n2.lower() != b(name).lower()
                ]
                return self
        return self.add(name, value)

    def bytes(self):
        head = self.method + b" " + self.target + b" " + self.version + b"\r\n"
        head += b"".join(n + b": " + v + b"\r\n" for n, v in self.headers)
        return head + b"\r\n" + self.body


class Signer:
    """Signs requests for one host with one key pair."""

    def __init__(self, access_key, secret_key, region, host):
        self.ak = b(access_key)
        self.sk = b(secret_key)
        self.region = b(region)
        self.host = b(host)

    # ---------------------------------------------------------------- SigV4, Authorization header
    def v4(
        self,
        method,
        target,
        headers=(),
        body=b"",
        payload=None,
        signed=None,
        host=None,
        content_length=True,
        overrides=None,
        amz_date=None,
        secret=None,
        access_key=None,
        region=None,
        service=b"s3",
        payload_line=None,
    ):
        """A header-signed request. payload: the x-amz-content-sha256 value (default: hex of the body);
        signed: the SignedHeaders names in order (default: host, x-amz-*, content-md5, content-type present,
        sorted); host: the Host header (None: the signer's host; False: no Host header)."""
        amz_date, scope_date = (amz_date, amz_date[:8]) if amz_date else amz_now()
        body = b(body)
        payload = sha256_hex(body) if payload is None else b(payload)
        host = self.host if host is None else host
        r = Req(method, target)
        if host is not False:
            r.add(b"Host", host)
        r.add(b"x-amz-date", amz_date)
        r.add(b"x-amz-content-sha256", payload)
        for n, v in headers:
            r.add(n, v)
        if content_length and body and r.get(b"content-length") is None:
            r.add(b"Content-Length", str(len(body)))
        r.body = body
        if signed is None:
            names = {n.lower() for n, _ in r.headers}
            signed = sorted(
                n for n in names if n in (b"host", b"content-md5", b"content-type") or n.startswith(b"x-amz-")
            )
        signed = [b(s) for s in signed]
        self.authorize_v4(
            r, signed, payload if payload_line is None else payload_line, amz_date, scope_date, overrides,
            secret, access_key, region, service,
        )
        return r

    def authorize_v4(
        self, r, signed, payload_line, amz_date, scope_date, overrides=None, secret=None, access_key=None,
        region=None, service=b"s3",
    ):
        """Adds the Authorization header for r as it stands."""
        path, query = split_target(r.target)
        creq = canonical_request_v4(r.method, path, canonical_query(query), r.headers, signed, payload_line, overrides)
        region = b(region or self.region)
        sig = sign_v4_string(secret or self.sk, amz_date, scope_date, region, creq, b(service))
        cred = b"/".join([b(access_key or self.ak), b(scope_date), region, b(service), b"aws4_request"])
        r.add(
            b"Authorization",
            b"AWS4-HMAC-SHA256 Credential=" + cred + b", SignedHeaders=" + b";".join(signed) + b", Signature=" + sig,
        )
        return r

    # ---------------------------------------------------------------- SigV4, presigned
    def presign_v4(
        self,
        method,
        path,
        query=b"",
        headers=(),
        body=b"",
        signed=(b"host",),
        expires=b"3600",
        host=None,
        payload_line=UNSIGNED,
        overrides=None,
        amz_date=None,
        extra_auth=b"",
        secret=None,
        access_key=None,
        algorithm=b"AWS4-HMAC-SHA256",
        content_length=True,
    ):
        """A presigned request. query: the operation's parameters (raw); extra_auth: raw parameters added
        after X-Amz-SignedHeaders (signed like the others)."""
        amz_date, scope_date = (amz_date, amz_date[:8]) if amz_date else amz_now()
        signed = [b(s) for s in signed]
        cred = b"/".join([b(access_key or self.ak), scope_date, self.region, b"s3", b"aws4_request"])
        auth = b"&".join(
            [
                b"X-Amz-Algorithm=" + b(algorithm),
                b"X-Amz-Credential=" + uri_encode(cred),
                b"X-Amz-Date=" + amz_date,
                b"X-Amz-Expires=" + b(expires),
                b"X-Amz-SignedHeaders=" + uri_encode(b";".join(signed)),
            ]
        )
        if extra_auth:
            auth += b"&" + b(extra_auth)
        q = (b(query) + b"&" + auth) if query else auth
        host = self.host if host is None else host
        r = Req(method, b(path) + b"?" + q)
        if host is not False:
            r.add(b"Host", host)
        for n, v in headers:
            r.add(n, v)
        body = b(body)
        if content_length and body and r.get(b"content-length") is None:
            r.add(b"Content-Length", str(len(body)))
        r.body = body
        creq = canonical_request_v4(
            r.method, split_target(b(path))[0], canonical_query(q, skip=(b"X-Amz-Signature",)), r.headers, signed,
            payload_line, overrides,
        )
        sig = sign_v4_string(secret or self.sk, amz_date, scope_date, self.region, creq)
        r.target += b"&X-Amz-Signature=" + sig
        return r

    # ---------------------------------------------------------------- SigV2
    def v2(
        self,
        method,
        target,
        headers=(),
        body=b"",
        date=None,
        host=None,
        overrides=None,
        secret=None,
        access_key=None,
        content_length=True,
    ):
        """`Authorization: AWS key:sig` with a Date header (date=False: none; then put x-amz-date in headers)."""
        host = self.host if host is None else host
        r = Req(method, target)
        if host is not False:
            r.add(b"Host", host)
        if date is not False:
            r.add(b"Date", http_date() if date is None else date)
        for n, v in headers:
            r.add(n, v)
        body = b(body)
        if content_length and body and r.get(b"content-length") is None:
            r.add(b"Content-Length", str(len(body)))
        r.body = body
        return self.authorize_v2(r, overrides, secret, access_key)

    def authorize_v2(self, r, overrides=None, secret=None, access_key=None):
        path, query = split_target(r.target)
        has_amz_date = any(n.lower() == b"x-amz-date" for n, _ in r.headers)
        date_line = b"" if has_amz_date else (r.get(b"date") or b"").strip()
        if overrides and b"date" in overrides:
            date_line = b(overrides[b"date"])
        sts = string_to_sign_v2(r.method, path, query, r.headers, date_line, overrides)
        r.add(b"Authorization", b"AWS " + b(access_key or self.ak) + b":" + sign_v2(secret or self.sk, sts))
        return r

    def presign_v2(
        self,
        method,
        path,
        query=b"",
        headers=(),
        body=b"",
        expires=None,
        host=None,
        overrides=None,
        extra=b"",
        secret=None,
        content_length=True,
        sign_expires=None,
    ):
        """AWSAccessKeyId/Expires/Signature; query: operation parameters (signed where they are
        sub-resources); extra: raw parameters appended after the signature (never signed); sign_expires: the
        Expires text to sign, when it differs from the one sent."""
        expires = b(int(time.time()) + 3600 if expires is None else expires)
        host = self.host if host is None else host
        r = Req(method, b"")
        if host is not False:
            r.add(b"Host", host)
        for n, v in headers:
            r.add(n, v)
        body = b(body)
        if content_length and body and r.get(b"content-length") is None:
            r.add(b"Content-Length", str(len(body)))
        r.body = body
        sts = string_to_sign_v2(
            method, split_target(b(path))[0], b(query), r.headers, b(sign_expires or expires), overrides
        )
        sig = uri_encode(sign_v2(secret or self.sk, sts))
        q = (b(query) + b"&" if query else b"") + b"AWSAccessKeyId=" + self.ak + b"&Expires=" + expires
        q += b"&Signature=" + sig
        if extra:
            q += b"&" + b(extra)
        r.target = b(path) + b"?" + q
        return r


# ---------------------------------------------------------------- aws-chunked
def chunk_signature(key, amz_date, scope, prev_sig, data):
    sts = b"\n".join(
        [b"AWS4-HMAC-SHA256-PAYLOAD", b(amz_date), b(scope), b(prev_sig), EMPTY_SHA256, sha256_hex(data)]
    )
    return hmac.new(key, sts, hashlib.sha256).hexdigest().encode()


def trailer_signature(key, amz_date, scope, prev_sig, trailer_text):
    sts = b"\n".join([b"AWS4-HMAC-SHA256-TRAILER", b(amz_date), b(scope), b(prev_sig), sha256_hex(trailer_text)])
    return hmac.new(key, sts, hashlib.sha256).hexdigest().encode()


def seed_signature(r):
    auth = r.get(b"authorization")
    return auth.rsplit(b"Signature=", 1)[1]
