package pushtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
)

// jws is a compact JSON Web Signature (a JWT), parsed but not yet
// verified. The fakes verify by hand rather than through a JWT library
// so that they check exactly what the provider checks and no more.
type jws struct {
	alg, kid     string
	claims       []byte
	signingInput string
	sig          []byte
}

var errMalformedJWS = errors.New("malformed JWT")

func parseJWS(s string) (jws, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return jws{}, errMalformedJWS
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return jws{}, errMalformedJWS
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return jws{}, errMalformedJWS
	}
	if !json.Valid(cb) {
		return jws{}, errMalformedJWS
	}
	return jws{alg: h.Alg, kid: h.Kid, claims: cb, signingInput: parts[0] + "." + parts[1], sig: sig}, nil
}

// verifyES256 checks an ES256 signature: SHA-256, then r and s as two
// 32-byte big-endian integers (RFC 7518 §3.4), not ASN.1.
func (j jws) verifyES256(pub *ecdsa.PublicKey) bool {
	if j.alg != "ES256" || pub == nil || len(j.sig) != 64 {
		return false
	}
	h := sha256.Sum256([]byte(j.signingInput))
	r := new(big.Int).SetBytes(j.sig[:32])
	s := new(big.Int).SetBytes(j.sig[32:])
	return ecdsa.Verify(pub, h[:], r, s)
}

// verifyRS256 checks an RS256 signature: RSASSA-PKCS1-v1_5 with SHA-256.
func (j jws) verifyRS256(pub *rsa.PublicKey) bool {
	if j.alg != "RS256" || pub == nil {
		return false
	}
	h := sha256.Sum256([]byte(j.signingInput))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], j.sig) == nil
}
