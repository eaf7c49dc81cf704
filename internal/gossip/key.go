package gossip

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrKeySize means a gossip key is not 16, 24 or 32 bytes (AES-128, -192
// or -256).
var ErrKeySize = errors.New("gossip: key must be 16, 24 or 32 bytes")

// ParseKey decodes a --gossip-key: standard base64 of 16, 24 or 32 bytes.
func ParseKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("gossip: key is not base64: %w", err)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("%w, not %d", ErrKeySize, len(k))
}

// NewKey returns a fresh 32-byte key, base64-encoded for --gossip-key.
func NewKey() (string, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// memberlist's stream encryption (security.go and net.go of memberlist
// v0.5.4, encryption version 1): encryptMsg, a big-endian uint32 length,
// then the version byte, a 12-byte nonce and AES-GCM ciphertext whose
// additional data is the type byte and the length. readState speaks it so
// that memberlist, which refuses plaintext once a key is set, still
// answers the in-process state read.
const (
	wireEncrypt  = 10 // encryptMsg
	wireEncVsn   = 1
	wireNonceLen = 12
)

// sealStream encrypts one stream message as memberlist's encryptLocalState.
func sealStream(key, plain []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 5, 5+1+wireNonceLen+len(plain)+gcm.Overhead())
	out[0] = wireEncrypt
	binary.BigEndian.PutUint32(out[1:5], uint32(1+wireNonceLen+len(plain)+gcm.Overhead()))
	nonce := make([]byte, wireNonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, wireEncVsn)
	out = append(out, nonce...)
	return gcm.Seal(out, nonce, plain, out[:5]), nil
}

// openStream decrypts a stream message as memberlist's decryptRemoteState.
func openStream(key, msg []byte) ([]byte, error) {
	if len(msg) < 5+1+wireNonceLen || msg[0] != wireEncrypt {
		return nil, errors.New("gossip: state answer is not encrypted")
	}
	n := binary.BigEndian.Uint32(msg[1:5])
	body := msg[5:]
	if uint32(len(body)) != n {
		return nil, fmt.Errorf("gossip: encrypted state of %d bytes, header says %d", len(body), n)
	}
	if body[0] != wireEncVsn {
		return nil, fmt.Errorf("gossip: encryption version %d", body[0])
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce, ct := body[1:1+wireNonceLen], body[1+wireNonceLen:]
	plain, err := gcm.Open(nil, nonce, ct, msg[:5])
	if err != nil {
		return nil, fmt.Errorf("gossip: decrypt state: %w", err)
	}
	return plain, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
