package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Organisational units that say what a certificate may do.
const (
	// NodeOU marks a coordinator's or worker's certificate.
	NodeOU = "gust-node"
	// ClientOU marks a user's (CLI, SDK) certificate.
	ClientOU = "gust-client"
)

// File names inside a CA directory.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// Validity of what InitCA and Issue make.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 2 * 365 * 24 * time.Hour
)

// ErrExists means a file InitCA or Issue would write is already there; it
// never overwrites key material.
var ErrExists = errors.New("tlsconf: file already exists")

// InitCA makes a new cluster CA in dir (created): ca.pem and ca-key.pem.
func InitCA(dir, commonName string) error {
	if commonName == "" {
		commonName = "gust cluster CA"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tlsconf: ca dir: %w", err)
	}
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	if err := absent(certPath, keyPath); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := serialNumber()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"gust"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("tlsconf: make CA: %w", err)
	}
	return writePair(certPath, keyPath, der, key)
}

// IssueRequest says what certificate to issue.
type IssueRequest struct {
	// Name is the certificate's common name and its files' base name
	// (NAME.pem, NAME-key.pem); for a node, its --name.
	Name string
	// Hosts are the IP addresses and DNS names the certificate is valid for
	// as a server. A node is dialled at the host of its --grpc and --raft
	// addresses, so those must be here.
	Hosts []string
	// Client issues a client-only certificate (ClientOU) instead of a node
	// certificate (NodeOU, server and client).
	Client bool
}

// Issue signs a certificate with the CA in caDir and writes it to outDir
// as NAME.pem and NAME-key.pem. It returns the two paths.
func Issue(caDir, outDir string, req IssueRequest) (certPath, keyPath string, err error) {
	if req.Name == "" || filepath.Base(req.Name) != req.Name {
		return "", "", fmt.Errorf("tlsconf: bad certificate name %q", req.Name)
	}
	ca, caKey, err := loadCA(caDir)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return "", "", fmt.Errorf("tlsconf: out dir: %w", err)
	}
	certPath, keyPath = filepath.Join(outDir, req.Name+".pem"), filepath.Join(outDir, req.Name+"-key.pem")
	if err := absent(certPath, keyPath); err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := serialNumber()
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.Name, Organization: []string{"gust"}, OrganizationalUnit: []string{NodeOU}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if req.Client {
		tmpl.Subject.OrganizationalUnit = []string{ClientOU}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, h := range req.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", fmt.Errorf("tlsconf: sign %s: %w", req.Name, err)
	}
	return certPath, keyPath, writePair(certPath, keyPath, der, key)
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: read CA: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: read CA key: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("tlsconf: %s: not PEM", dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: parse CA: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: parse CA key: %w", err)
	}
	return cert, key, nil
}

func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return fmt.Errorf("tlsconf: write key: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("tlsconf: write certificate: %w", err)
	}
	return nil
}

func absent(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%w: %s", ErrExists, p)
		}
	}
	return nil
}

func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}
