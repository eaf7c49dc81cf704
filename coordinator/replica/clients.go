package replica

import (
	"sync"

	"github.com/gustfaas/gust/internal/grpcopt"
	"github.com/gustfaas/gust/internal/nodeauth"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Clients keeps one connection per coordinator node port.
type Clients struct {
	creds  credentials.TransportCredentials // nil: plaintext
	secret nodeauth.Secret
	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
}

// NewClients dials node ports with creds (nil: plaintext), proving secret.
func NewClients(creds credentials.TransportCredentials, secret nodeauth.Secret) *Clients {
	return &Clients{creds: creds, secret: secret}
}

// Get returns a PeerService client for the node port addr.
func (p *Clients) Get(addr string) (nodev1.PeerServiceClient, error) {
	c, err := p.conn(addr)
	if err != nil {
		return nil, err
	}
	return nodev1.NewPeerServiceClient(c), nil
}

func (p *Clients) conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = map[string]*grpc.ClientConn{}
	}
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	creds := p.creds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds), grpc.WithContextDialer(nodeauth.Dialer(p.secret, nodeauth.GRPC)),
		grpcopt.CallSizes())
	if err != nil {
		return nil, err
	}
	p.conns[addr] = c
	return c, nil
}

// Close drops every connection.
func (p *Clients) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
