// Package tlsca is Berth's own small certificate authority: a CA made once
// and kept in the data directory, the certificates it issues (the control
// plane's serving certificate, the embedded etcd's server and client
// certificates), the CA's pin (the SHA-256 of its public key, as kubeadm's
// discovery-token-ca-cert-hash) and the agent's side of pinning: fetch
// the CA over TLS, check the pin, trust only that CA afterwards
// (docs/security.md).
package tlsca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/durable"
	"github.com/berthdev/berth/internal/errs"
)

// AgentServerName is the name agents ask for (TLS SNI) and verify in the
// control plane's certificate, whatever address they dial: the serving
// certificate always carries it, and only the CA the agent pinned can
// sign it.
const AgentServerName = "berth-control-plane"

// Validity of what the package makes. Leaves are re-issued at start when
// they have less than RenewBefore left.
const (
	CAValidity   = 20 * 365 * 24 * time.Hour
	LeafValidity = 2 * 365 * 24 * time.Hour
	RenewBefore  = 30 * 24 * time.Hour
)

// Authority is a CA whose key is on this machine.
type Authority struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// LoadOrCreateCA reads dir/ca.crt and dir/ca.key, or makes them (key mode
// 0600, written durably). dir is created 0700.
func LoadOrCreateCA(dir, commonName string, now time.Time) (*Authority, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "create %s", dir)
	}
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	if cerr == nil && kerr == nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, errs.Wrap(errs.Internal, err, "the CA in %s is corrupt", dir)
		}
		cert, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return nil, errs.Wrap(errs.Internal, err, "the CA in %s is corrupt", dir)
		}
		signer, ok := pair.PrivateKey.(crypto.Signer)
		if !ok || !cert.IsCA {
			return nil, errs.E(errs.Internal, "the CA in %s is not a CA", dir)
		}
		return &Authority{Cert: cert, CertPEM: certPEM, key: signer}, nil
	}
	if !errors.Is(cerr, os.ErrNotExist) && cerr != nil {
		return nil, errs.Wrap(errs.Unavailable, cerr, "read %s", certPath)
	}
	if !errors.Is(kerr, os.ErrNotExist) && kerr != nil {
		return nil, errs.Wrap(errs.Unavailable, kerr, "read %s", keyPath)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Berth"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeKey(keyPath, key); err != nil {
		return nil, err
	}
	// The certificate last: its presence means the pair is complete.
	if err := durable.WriteFile(certPath, certPEM, 0o644); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "write %s", certPath)
	}
	return &Authority{Cert: cert, CertPEM: certPEM, key: key}, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return errs.Wrap(errs.Unavailable, err, "write %s", path)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

// LeafSpec describes a certificate to issue.
type LeafSpec struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	Server     bool // ExtKeyUsageServerAuth
	Client     bool // ExtKeyUsageClientAuth
}

// Leaf is an issued certificate: its files and the loaded pair (whose
// chain includes the CA, so a client can pin it from the handshake).
type Leaf struct {
	CertFile, KeyFile string
	TLS               tls.Certificate
}

// Issue returns dir/name.crt and dir/name.key, issuing them again when
// absent, signed by another CA, not covering spec's names and addresses,
// or expiring within RenewBefore.
func (a *Authority) Issue(dir, name string, spec LeafSpec, now time.Time) (Leaf, error) {
	l := Leaf{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	if pair, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile); err == nil && a.covers(pair, spec, now) {
		l.TLS = a.withChain(pair)
		return l, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Leaf{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: spec.CommonName, Organization: []string{"Berth"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(LeafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     slices.Compact(slices.Sorted(slices.Values(spec.DNSNames))),
		IPAddresses:  spec.IPs,
	}
	if spec.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if spec.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.key)
	if err != nil {
		return Leaf{}, err
	}
	if err := writeKey(l.KeyFile, key); err != nil {
		return Leaf{}, err
	}
	if err := durable.WriteFile(l.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return Leaf{}, errs.Wrap(errs.Unavailable, err, "write %s", l.CertFile)
	}
	pair, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile)
	if err != nil {
		return Leaf{}, err
	}
	l.TLS = a.withChain(pair)
	return l, nil
}

func (a *Authority) withChain(pair tls.Certificate) tls.Certificate {
	pair.Certificate = append(pair.Certificate[:1:1], a.Cert.Raw)
	return pair
}

// covers says whether an existing pair can be kept.
func (a *Authority) covers(pair tls.Certificate, spec LeafSpec, now time.Time) bool {
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || c.CheckSignatureFrom(a.Cert) != nil || now.Add(RenewBefore).After(c.NotAfter) {
		return false
	}
	for _, n := range spec.DNSNames {
		if !slices.Contains(c.DNSNames, n) {
			return false
		}
	}
	for _, ip := range spec.IPs {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	has := func(u x509.ExtKeyUsage) bool { return slices.Contains(c.ExtKeyUsage, u) }
	return (!spec.Server || has(x509.ExtKeyUsageServerAuth)) && (!spec.Client || has(x509.ExtKeyUsageClientAuth))
}

// Pin is a CA's pin: "sha256:" and the hex SHA-256 of its DER
// SubjectPublicKeyInfo (kubeadm's discovery-token-ca-cert-hash; openssl
// computes it with `openssl x509 -pubkey -noout -in ca.crt | openssl pkey
// -pubin -outform der | sha256sum`).
func Pin(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ValidPin says whether s has a pin's form.
func ValidPin(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

// ClientConfig trusts only the CA in caPEM and checks the peer's
// certificate for AgentServerName, whatever address is dialled.
func ClientConfig(caPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errs.E(errs.Invalid, "no CA certificate in the pinned PEM")
	}
	return &tls.Config{RootCAs: pool, ServerName: AgentServerName, MinVersion: tls.VersionTLS12}, nil
}

// Discover connects to addr (host:port) over TLS, finds in the chain the
// server presents a CA whose Pin is pin, checks that the server's
// certificate is signed by it for AgentServerName, and returns that CA as
// PEM. Nothing but the pin is trusted: a server that cannot show a chain
// to the pinned CA is refused.
func Discover(ctx context.Context, addr, pin string) ([]byte, error) {
	if !ValidPin(pin) {
		return nil, errs.E(errs.Invalid, "the CA pin %q is not sha256:<64 hex digits>", pin)
	}
	var found []byte
	cfg := &tls.Config{
		ServerName: AgentServerName,
		MinVersion: tls.VersionTLS12,
		// The chain is verified below against the pinned CA only.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("the server presented no certificate")
			}
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			for _, r := range raw[1:] {
				ca, err := x509.ParseCertificate(r)
				if err != nil || !ca.IsCA || Pin(ca) != pin {
					continue
				}
				pool := x509.NewCertPool()
				pool.AddCert(ca)
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: AgentServerName}); err != nil {
					return fmt.Errorf("the server's certificate is not valid under the pinned CA: %w", err)
				}
				found = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r})
				return nil
			}
			return fmt.Errorf("the server's certificate chain holds no CA with the pin %s: this is not the control plane the join token was made for", pin)
		},
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if found == nil && strings.Contains(err.Error(), "pin") {
			return nil, errs.Wrap(errs.Unauthenticated, err, "discover the control plane's CA at %s", addr)
		}
		return nil, errs.Wrap(errs.Unavailable, err, "discover the control plane's CA at %s", addr)
	}
	conn.Close()
	if found == nil {
		return nil, errs.E(errs.Unauthenticated, "the control plane at %s showed no CA with the pin %s", addr, pin)
	}
	return found, nil
}
