package sandbox

// InitPid is the pid, on the host, of the sandbox's init (its process once
// started).
func InitPid(s *Sandbox) int {
	st, err := s.c.State()
	if err != nil {
		return 0
	}
	return st.InitProcessPid
}

// ResetInit undoes UseInit, so later tests re-execute the test binary.
func ResetInit() {
	smallInitMu.Lock()
	defer smallInitMu.Unlock()
	if smallInit != nil {
		smallInit.Close()
		smallInit = nil
	}
}
