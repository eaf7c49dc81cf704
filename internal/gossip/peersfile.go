package gossip

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The peers file remembers the addresses of the members last seen alive,
// so a node started again joins them whatever its Join says. Without it,
// the first node of a cluster (started with no Join) stopped cleanly would
// come back alone: the others forget a member that left, and nobody would
// call it.

// loadPeers reads the addresses saved in path; nothing if there are none.
func loadPeers(path string) []string {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var addrs []string
	if json.Unmarshal(b, &addrs) != nil {
		return nil
	}
	return addrs
}

// savePeers writes the alive peers' addresses to path whenever they
// change, until the node shuts down. An empty set is not written: a node
// left alone keeps the last addresses it knew, to find them again.
func (n *Node) savePeers(path string, every time.Duration) {
	defer n.watchWG.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	var last []string
	for {
		addrs := n.peerAddrs()
		slices.Sort(addrs)
		if len(addrs) > 0 && !slices.Equal(addrs, last) {
			if err := writePeers(path, addrs); err != nil {
				n.log.Warn("save gossip peers", "path", path, "err", err)
			} else {
				last = addrs
			}
		}
		select {
		case <-n.done:
			return
		case <-t.C:
		}
	}
}

func writePeers(path string, addrs []string) error {
	b, err := json.Marshal(addrs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return errors.Join(os.Rename(tmp, path))
}
