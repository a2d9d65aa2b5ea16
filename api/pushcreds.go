package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"regexp"

	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
)

var (
	appleID     = regexp.MustCompile(`^[A-Z0-9]{10}$`)
	bundleTopic = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,254}$`)
)

type apnsRequest struct {
	KeyP8       *string `json:"key_p8"`
	KeyID       *string `json:"key_id"`
	TeamID      *string `json:"team_id"`
	Topic       *string `json:"topic"`
	Environment *string `json:"environment"`
}

type fcmRequest struct {
	ServiceAccountJSON *string `json:"service_account_json"`
}

// serviceAccount is the part of a Google service-account key file we
// read; other members are Google's and are kept as given.
type serviceAccount struct {
	Type        string `json:"type"`
	ProjectID   string `json:"project_id"`
	PrivateKey  string `json:"private_key"`
	ClientEmail string `json:"client_email"`
	TokenURI    string `json:"token_uri"`
}

func (s *Server) handlePutAPNs() gin.HandlerFunc {
	return func(c *gin.Context) {
		var req apnsRequest
		if err := decodeBody(c, limitDefault, &req); err != nil {
			s.fail(c, err)
			return
		}
		var errs fieldErrors
		if req.KeyP8 == nil {
			errs.add("key_p8", "required")
		} else if msg := checkP8(*req.KeyP8); msg != "" {
			errs.add("key_p8", msg)
		}
		for _, f := range []struct {
			name string
			v    *string
		}{{"key_id", req.KeyID}, {"team_id", req.TeamID}} {
			if f.v == nil {
				errs.add(f.name, "required")
			} else if !appleID.MatchString(*f.v) {
				errs.add(f.name, "must be the 10-character identifier Apple shows (A-Z, 0-9)")
			}
		}
		if req.Topic == nil {
			errs.add("topic", "required")
		} else if !bundleTopic.MatchString(*req.Topic) {
			errs.add("topic", "must be the app's bundle id, such as com.example.app")
		}
		env := "production"
		if req.Environment != nil {
			env = *req.Environment
			if env != "production" && env != "development" {
				errs.add("environment", `must be "production" or "development"`)
			}
		}
		if err := errs.err(); err != nil {
			s.fail(c, err)
			return
		}
		err := s.engine.PutCredentials(c, keyOf(c).BrandID, hotzone.PushCredentials{Provider: hotzone.ProviderAPNs, Secret: []byte(*req.KeyP8),
			KeyID: *req.KeyID, TeamID: *req.TeamID, Topic: *req.Topic, Environment: env})
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

// checkP8 tells what is wrong with an APNs auth key, or "".
func checkP8(p8 string) string {
	block, _ := pem.Decode([]byte(p8))
	if block == nil || block.Type != "PRIVATE KEY" {
		return "must be the .p8 file's contents: -----BEGIN PRIVATE KEY----- ..."
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return "is not a PKCS#8 private key: " + err.Error()
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return "must be an ES256 (P-256) key as Apple issues them"
	}
	return ""
}

func (s *Server) handlePutFCM() gin.HandlerFunc {
	return func(c *gin.Context) {
		var req fcmRequest
		if err := decodeBody(c, limitDefault, &req); err != nil {
			s.fail(c, err)
			return
		}
		if req.ServiceAccountJSON == nil {
			s.fail(c, hotzone.Invalid("service_account_json", "required"))
			return
		}
		sa, msg := parseServiceAccount(*req.ServiceAccountJSON)
		if msg == "" && s.checkTokenURI != nil {
			if err := s.checkTokenURI(sa.TokenURI); err != nil {
				msg = err.Error()
			}
		}
		if msg != "" {
			s.fail(c, hotzone.Invalid("service_account_json", msg))
			return
		}
		err := s.engine.PutCredentials(c, keyOf(c).BrandID, hotzone.PushCredentials{Provider: hotzone.ProviderFCM, Secret: []byte(*req.ServiceAccountJSON),
			ProjectID: sa.ProjectID, ClientEmail: sa.ClientEmail, TokenURI: sa.TokenURI})
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

// parseServiceAccount reads a service-account key file and tells what is
// wrong with it, or "".
func parseServiceAccount(raw string) (serviceAccount, string) {
	var sa serviceAccount
	if err := json.Unmarshal([]byte(raw), &sa); err != nil {
		return sa, "is not JSON: " + err.Error()
	}
	switch {
	case sa.Type != "service_account":
		return sa, `must be a service-account key file ("type": "service_account")`
	case sa.ProjectID == "":
		return sa, "lacks project_id"
	case sa.ClientEmail == "":
		return sa, "lacks client_email"
	}
	if sa.TokenURI != "" {
		if u, err := url.Parse(sa.TokenURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return sa, "token_uri is not an http(s) URL"
		}
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return sa, "private_key is not a PEM key"
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if k1, err1 := x509.ParsePKCS1PrivateKey(block.Bytes); err1 == nil {
			key = k1
		} else {
			return sa, "private_key does not parse: " + err.Error()
		}
	}
	if _, ok := key.(*rsa.PrivateKey); !ok {
		return sa, "private_key must be an RSA key"
	}
	return sa, ""
}

func (s *Server) handleDeleteCredentials(p hotzone.Provider) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.engine.DeleteCredentials(c, keyOf(c).BrandID, p); err != nil {
			s.fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

// providerStatus is one provider in GET /v1/push; never a secret.
type providerStatus struct {
	Configured  bool    `json:"configured"`
	KeyID       string  `json:"key_id,omitempty"`
	TeamID      string  `json:"team_id,omitempty"`
	Topic       string  `json:"topic,omitempty"`
	Environment string  `json:"environment,omitempty"`
	ProjectID   string  `json:"project_id,omitempty"`
	ClientEmail string  `json:"client_email,omitempty"`
	Status      string  `json:"status"`
	Error       *string `json:"error"` // null while ok
}

func (s *Server) handleGetPush() gin.HandlerFunc {
	return func(c *gin.Context) {
		brandID := keyOf(c).BrandID
		status := func(p hotzone.Provider) (any, error) {
			cr, err := s.db.Credentials(c, brandID, p)
			if errors.Is(err, hotzone.ErrNotFound) {
				return map[string]bool{"configured": false}, nil
			}
			if err != nil {
				return nil, err
			}
			return providerStatus{Configured: true, KeyID: cr.KeyID, TeamID: cr.TeamID, Topic: cr.Topic, Environment: cr.Environment,
				ProjectID: cr.ProjectID, ClientEmail: cr.ClientEmail, Status: cr.Status, Error: cr.Error}, nil
		}
		apns, err := status(hotzone.ProviderAPNs)
		if err != nil {
			s.fail(c, err)
			return
		}
		fcm, err := status(hotzone.ProviderFCM)
		if err != nil {
			s.fail(c, err)
			return
		}
		ok(c, http.StatusOK, map[string]any{"apns": apns, "fcm": fcm})
	}
}
