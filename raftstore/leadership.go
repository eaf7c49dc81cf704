package raftstore

import "sync"

// leadership fans this node's leadership changes out to any number of
// subscribers. raft's own LeaderCh is one channel with one buffered slot:
// two readers would take each other's signals. Instead raft writes every
// change to Config.NotifyCh (it blocks until read, so none is lost), watch
// reads it, and each subscriber gets its own channel.
type leadership struct {
	notify    chan bool     // raft's NotifyCh
	done      chan struct{} // closed when watch returns
	closeOnce sync.Once

	mu      sync.Mutex
	leading bool
	subs    map[chan bool]struct{}
	closed  bool
}

func newLeadership() *leadership {
	return &leadership{notify: make(chan bool), done: make(chan struct{}), subs: map[chan bool]struct{}{}}
}

// watch forwards raft's notifications until notify is closed.
func (l *leadership) watch() {
	defer close(l.done)
	for v := range l.notify {
		l.set(v)
	}
}

func (l *leadership) set(v bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leading = v
	for ch := range l.subs {
		sendLatest(ch, v)
	}
}

// sendLatest puts v in ch's one slot, replacing an unread older value, as
// raft does for LeaderCh: a slow reader sees the latest state, and two
// trues in a row mean leadership was lost and won again in between. The
// caller holds l.mu, so it is the only sender.
func sendLatest(ch chan bool, v bool) {
	select {
	case <-ch:
	default:
	}
	ch <- v
}

func (l *leadership) subscribe() (<-chan bool, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan bool, 1)
	if l.closed {
		close(ch)
		return ch, func() {}
	}
	l.subs[ch] = struct{}{}
	return ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[ch]; ok {
			delete(l.subs, ch)
			close(ch)
		}
	}
}

// close ends every subscription once raft has shut down. raft tells
// NotifyCh that it stepped down only if someone is reading at that
// moment, so a leader's subscribers are sent false here.
func (l *leadership) close() {
	l.closeOnce.Do(func() {
		close(l.notify)
		<-l.done
		l.mu.Lock()
		defer l.mu.Unlock()
		for ch := range l.subs {
			if l.leading {
				sendLatest(ch, false)
			}
			close(ch)
		}
		l.leading = false
		l.subs = nil
		l.closed = true
	})
}

// LeadershipChanges subscribes to this node's leadership changes: true when
// it becomes leader, false when it stops. Each subscriber has its own
// channel, which holds only the latest change: a reader that falls behind
// sees the current state, and two trues in a row mean leadership was lost
// and won again (a new term) in between. Only changes after the call are
// sent; IsLeader gives the state before it. Close sends false to a leader's
// subscribers and closes every channel; the returned func ends the
// subscription early and closes its channel.
func (s *Store) LeadershipChanges() (<-chan bool, func()) {
	return s.leaders.subscribe()
}
