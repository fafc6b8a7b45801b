// minio-go e2e client for s3-resign-proxy (Debian's golang-github-minio-minio-go-v7-dev, 7.0.46).
//
// Over plain HTTP minio-go signs every PutObject/UploadPart body as STREAMING-AWS4-HMAC-SHA256-PAYLOAD
// (64 KiB signed chunks, Content-Length set, no Content-Encoding: aws-chunked). With TrailingHeaders it
// uses STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER for multipart parts (x-amz-checksum-crc32c trailer).
//
// Build: GO111MODULE=off GOPATH=/usr/share/gocode:$HOME/go go build   (run.sh does this)
// Env:   E2E_ENDPOINT E2E_ACCESS_KEY E2E_SECRET_KEY E2E_REGION E2E_WORK E2E_BIG E2E_HERE
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const bucket = "e2e-minio-go"

var passed, failed, skipped int

func pass(name string) { passed++; fmt.Printf("PASS %s\n", name) }
func fail(name string, err error) {
	failed++
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if len(msg) > 400 {
		msg = msg[:400] + "..."
	}
	fmt.Printf("FAIL %s: %s\n", name, msg)
}
func skip(name, why string) { skipped++; fmt.Printf("SKIP %s: %s\n", name, why) }

func run(name string, f func() error) bool {
	if err := f(); err != nil {
		fail(name, err)
		return false
	}
	pass(name)
	return true
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// originCheck asks a long-lived `origin_check.py batch` process (one JSON line in, PASS/FAIL line out)
// whether the origin has the object with this sha256 ("exists") or does not have it ("absent").
var (
	checkIn  io.WriteCloser
	checkOut *bufio.Scanner
)

func originCheck(op, key, sum string) error {
	if checkIn == nil {
		cmd := exec.Command("python3", filepath.Join(os.Getenv("E2E_HERE"), "origin_check.py"), "batch")
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		checkIn, checkOut = in, bufio.NewScanner(out)
	}
	req, _ := json.Marshal(map[string]string{"op": op, "bucket": bucket, "sha256": sum, "name": "x",
		"key": "b64:" + base64.StdEncoding.EncodeToString([]byte(key))})
	if _, err := checkIn.Write(append(req, '\n')); err != nil {
		return err
	}
	if !checkOut.Scan() {
		return fmt.Errorf("origin_check.py exited: %v", checkOut.Err())
	}
	if line := checkOut.Text(); !strings.HasPrefix(line, "PASS") {
		return errors.New(strings.TrimPrefix(line, "FAIL x: "))
	}
	return nil
}

func newClient(secret string, trailing bool) (*minio.Client, error) {
	u, err := url.Parse(os.Getenv("E2E_ENDPOINT"))
	if err != nil {
		return nil, err
	}
	region := os.Getenv("E2E_REGION")
	if region == "" {
		region = "us-east-1"
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:           credentials.NewStaticV4(os.Getenv("E2E_ACCESS_KEY"), secret, ""),
		Secure:          false,
		Region:          region,
		BucketLookup:    minio.BucketLookupPath,
		TrailingHeaders: trailing,
	})
	if err != nil {
		return nil, err
	}
	c.SetAppInfo("s3rp-e2e", "1")
	return c, nil
}

func getAll(ctx context.Context, c *minio.Client, key string) ([]byte, error) {
	o, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

func putAndCheck(ctx context.Context, c *minio.Client, key string, data []byte, size int64, opts minio.PutObjectOptions) error {
	if _, err := c.PutObject(ctx, bucket, key, bytes.NewReader(data), size, opts); err != nil {
		return fmt.Errorf("PutObject: %w", err)
	}
	return originCheck("exists", key, sha(data))
}

func errResp(err error) minio.ErrorResponse {
	var r minio.ErrorResponse
	if errors.As(err, &r) {
		return r
	}
	return minio.ToErrorResponse(err)
}

func main() {
	minio.MaxRetry = 1 // no retries (like the other groups): a proxy error shows up at once
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	defer func() {
		fmt.Printf("# %d passed, %d failed, %d skipped\n", passed, failed, skipped)
		if failed > 0 {
			os.Exit(1)
		}
	}()

	c, err := newClient(os.Getenv("E2E_SECRET_KEY"), false)
	if err != nil {
		fail("minio-go/client", err)
		return
	}
	if !run("minio-go/make-bucket", func() error { return c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}) }) {
		if err := originCheck("mkbucket", "-", ""); err != nil { // carry on so the other tests still say something
			fail("minio-go/make-bucket-at-origin", err)
			return
		}
	}

	small := make([]byte, 100*1024+3)
	rand.Read(small)
	run("minio-go/put-small-streaming-signed", func() error {
		return putAndCheck(ctx, c, "small/obj.bin", small, int64(len(small)),
			minio.PutObjectOptions{ContentType: "application/x-minio", UserMetadata: map[string]string{"from": "minio-go"}})
	})

	run("minio-go/put-small-unsigned-payload", func() error {
		return putAndCheck(ctx, c, "small/unsigned.bin", small, int64(len(small)),
			minio.PutObjectOptions{DisableContentSha256: true})
	})

	big, err := os.ReadFile(os.Getenv("E2E_BIG"))
	if err != nil {
		fail("minio-go/read-big", err)
		return
	}
	run("minio-go/put-20MB-multipart-streaming-signed", func() error {
		return putAndCheck(ctx, c, "big/20MB.bin", big, int64(len(big)), minio.PutObjectOptions{})
	})

	run("minio-go/put-unknown-length", func() error {
		return putAndCheck(ctx, c, "big/unknown-length.bin", big[:3*1024*1024+5], -1, minio.PutObjectOptions{})
	})

	run("minio-go/put-20MB-signed-trailer", func() error {
		ct, err := newClient(os.Getenv("E2E_SECRET_KEY"), true)
		if err != nil {
			return err
		}
		return putAndCheck(ctx, ct, "big/20MB-trailer.bin", big, int64(len(big)), minio.PutObjectOptions{})
	})

	run("minio-go/get-object-compare", func() error {
		got, err := getAll(ctx, c, "small/obj.bin")
		if err != nil {
			return err
		}
		if !bytes.Equal(got, small) {
			return errors.New("small object differs")
		}
		got, err = getAll(ctx, c, "big/20MB.bin")
		if err != nil {
			return err
		}
		if sha(got) != sha(big) {
			return errors.New("20 MB object differs")
		}
		st, err := c.StatObject(ctx, bucket, "small/obj.bin", minio.StatObjectOptions{})
		if err != nil {
			return err
		}
		if st.Size != int64(len(small)) || st.ContentType != "application/x-minio" || st.UserMetadata["From"] != "minio-go" {
			return fmt.Errorf("stat: size %d type %q meta %v", st.Size, st.ContentType, st.UserMetadata)
		}
		o, err := c.GetObject(ctx, bucket, "big/20MB.bin", minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer o.Close()
		part := make([]byte, 1000)
		if _, err := o.ReadAt(part, 17*1024*1024); err != nil {
			return fmt.Errorf("ranged ReadAt: %w", err)
		}
		if !bytes.Equal(part, big[17*1024*1024:17*1024*1024+1000]) {
			return errors.New("ranged read differs")
		}
		return nil
	})

	list := func(prefix string, recursive bool) ([]string, error) {
		var keys []string
		for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: recursive}) {
			if o.Err != nil {
				return keys, o.Err
			}
			keys = append(keys, o.Key)
		}
		return keys, nil
	}
	run("minio-go/list-objects-prefix", func() error {
		keys, err := list("big/", false) // delimiter=/
		want := "big/20MB-trailer.bin,big/20MB.bin,big/unknown-length.bin"
		if err != nil || strings.Join(keys, ",") != want {
			return fmt.Errorf("listed %v (%v), want %s", keys, err, want)
		}
		keys, err = list("", false)
		if err != nil || strings.Join(keys, ",") != "big/,small/" {
			return fmt.Errorf("top level listed %v (%v)", keys, err)
		}
		return nil
	})

	// Recursive listing sends an empty `delimiter=`; s3s-fs 0.14.1 treats "" as a delimiter matching at
	// offset 0 and returns each key's first byte as a CommonPrefix (and panics on a multi-byte first char).
	all, err := list("", true)
	want := "big/20MB-trailer.bin,big/20MB.bin,big/unknown-length.bin,small/obj.bin,small/unsigned.bin"
	switch {
	case err == nil && strings.Join(all, ",") == want:
		pass("minio-go/list-objects-recursive")
	case err == nil && strings.Join(all, ",") == "b,s":
		skip("minio-go/list-objects-recursive", "s3s-fs 0.14.1 treats an empty delimiter= (sent by minio-go for "+
			"recursive listings) as a real delimiter: it returns first-byte CommonPrefixes [b s]")
	default:
		fail("minio-go/list-objects-recursive", fmt.Errorf("listed %v (%v), want %s", all, err, want))
	}

	run("minio-go/presigned-get", func() error {
		u, err := c.PresignedGetObject(ctx, bucket, "small/obj.bin", 5*time.Minute, nil)
		if err != nil {
			return err
		}
		resp, err := http.Get(u.String())
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !bytes.Equal(b, small) {
			return fmt.Errorf("HTTP %d, %d bytes: %.200s", resp.StatusCode, len(b), b)
		}
		return nil
	})

	run("minio-go/neg-wrong-secret", func() error {
		bad, err := newClient("wrong-secret", false)
		if err != nil {
			return err
		}
		// a small body: a server that answers 403 before reading the body and closes must not turn the
		// client's view of it into a broken pipe
		body := []byte("must not be stored")
		_, err = bad.PutObject(ctx, bucket, "neg/wrong-secret", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
		if err == nil {
			return errors.New("PutObject with a wrong secret succeeded")
		}
		if code := errResp(err).Code; code != "SignatureDoesNotMatch" {
			return fmt.Errorf("error code %q (%v)", code, err)
		}
		return originCheck("absent", "neg/wrong-secret", "")
	})

	// awkward keys, from ../keys.py
	out, err := exec.Command("python3", filepath.Join(os.Getenv("E2E_HERE"), "keys.py")).Output()
	var keys [][]interface{}
	if err == nil {
		err = json.Unmarshal(out, &keys)
	}
	if err != nil {
		fail("minio-go/keys", err)
		return
	}
	data := make([]byte, 555)
	rand.Read(data)
	for _, k := range keys {
		name, key := k[0].(string), k[1].(string)
		limitation, _ := k[2].(string)
		n := "minio-go/key/" + name
		err := func() error {
			if err := putAndCheck(ctx, c, key, data, int64(len(data)), minio.PutObjectOptions{}); err != nil {
				return err
			}
			got, err := getAll(ctx, c, key)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, data) {
				return errors.New("GetObject body differs")
			}
			return c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
		}()
		if err == nil {
			pass(n)
			continue
		}
		// SKIP only a known s3s-fs limitation that the origin itself shows when probed directly
		if limitation != "" {
			if perr := originCheck("canput", key, ""); perr != nil {
				msg := perr.Error()
				if len(msg) > 150 {
					msg = msg[len(msg)-150:]
				}
				skip(n, fmt.Sprintf("%s [origin directly: %s]", limitation, msg))
				continue
			}
		}
		fail(n, err)
	}
}
