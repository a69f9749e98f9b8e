// Package testpki makes the certificates of the TLS tests: a CA, a server
// certificate for the engine and client certificates, valid or not, written
// as the PEM files the docker CLI reads (ca.pem, cert.pem, key.pem). For
// tests only; its keys are ECDSA P-256, made fresh each time.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Pair is a certificate and its key.
type Pair struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// CertPEM and KeyPEM encode the pair as ca.pem/cert.pem and key.pem hold it.
func (p Pair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Cert.Raw})
}

func (p Pair) KeyPEM() []byte {
	der, err := x509.MarshalECPrivateKey(p.Key)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// Options say what a certificate is for and when it is valid; zero values
// give a client certificate valid from an hour ago for a day.
type Options struct {
	Name      string   // the subject's common name
	DNSNames  []string // a server's names
	IPs       []net.IP // a server's addresses
	Server    bool     // server authentication, else client authentication
	NotBefore time.Time
	NotAfter  time.Time
}

// NewCA makes a self-signed CA named name.
func NewCA(name string) Pair {
	return issue(nil, Options{Name: name}, true)
}

// Issue makes a certificate signed by the CA ca.
func (ca Pair) Issue(o Options) Pair {
	return issue(&ca, o, false)
}

func issue(ca *Pair, o Options, isCA bool) Pair {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = o.NotBefore.Add(25 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.Name},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPs,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	switch {
	case isCA:
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	case o.Server:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	default:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.Cert, ca.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return Pair{Cert: cert, Key: key}
}

// WriteClientDir writes ca.pem (ca's certificate), cert.pem and key.pem
// (client's) into dir, as DOCKER_CERT_PATH holds them, and returns dir.
func WriteClientDir(dir string, ca, client Pair) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	for name, data := range map[string][]byte{"ca.pem": ca.CertPEM(), "cert.pem": client.CertPEM(), "key.pem": client.KeyPEM()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return "", err
		}
	}
	return dir, nil
}
