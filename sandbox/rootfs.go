package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
)

// rootfsFiles is the whole `provided` runtime: a static bootstrap needs no
// libraries, only the directories the sandbox mounts over and the few files
// that name its user and resolve localhost.
var rootfsFiles = map[string]string{
	"etc/passwd":        "root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin\n",
	"etc/group":         "root:x:0:\nsbx_user1051:x:990:\n",
	"etc/hosts":         "127.0.0.1 localhost\n::1 localhost\n",
	"etc/hostname":      "gust\n",
	"etc/nsswitch.conf": "hosts: files dns\n",
	"etc/resolv.conf":   "",
	"etc/os-release":    "NAME=gust\nID=gust\nPRETTY_NAME=\"gust provided runtime\"\n",
}

var rootfsDirs = []string{
	"var/task", "var/runtime", "opt", "tmp", "proc", "dev", "etc/ssl/certs", "home/sbx_user1051",
}

// hostCABundle is copied in when present, so functions with egress can
// speak TLS; the runtime still needs nothing downloaded.
const hostCABundle = "/etc/ssl/certs/ca-certificates.crt"

// EnsureRootFS writes the `provided` runtime's root filesystem into dir,
// which the sandboxes then mount read-only. It is idempotent.
func EnsureRootFS(dir string) error {
	for _, d := range rootfsDirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	for name, content := range rootfsFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	if ca, err := os.ReadFile(hostCABundle); err == nil {
		if err := os.WriteFile(filepath.Join(dir, "etc/ssl/certs/ca-certificates.crt"), ca, 0o644); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	return nil
}
