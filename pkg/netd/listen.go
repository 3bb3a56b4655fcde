package netd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultSocket is where netd serves when STACKBOX_SOCKET is not set.
const DefaultSocket = "/run/stackbox/netd.sock"

// SocketPath returns the control socket's path: $STACKBOX_SOCKET, or
// DefaultSocket.
func SocketPath(getenv func(string) string) string {
	if getenv != nil {
		if p := getenv("STACKBOX_SOCKET"); p != "" {
			return p
		}
	}
	return DefaultSocket
}

// socketMode is the control socket's permission. Every local user may read
// the configuration, as on Linux (ifconfig and netstat need no privilege),
// so every user must be able to connect; what a peer may change is decided
// per request from its SO_PEERCRED credentials, not by the file mode.
const socketMode = 0o666

// Listen opens the control socket at path. It creates the parent directory
// (0755) when missing, refuses when a netd already answers on path
// (wrapping EADDRINUSE), replaces a stale socket file nobody listens on,
// and refuses to replace a file that is not a socket. The listener removes
// the socket file when closed.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("netd: creating the socket directory: %w", err)
		}
		// 0755 whatever the umask: every user must reach the socket.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, fmt.Errorf("netd: %w", err)
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("netd: %s exists and is not a socket; not replacing it: %w", path, syscall.EEXIST)
		}
		if err := checkStale(path); err != nil {
			return nil, err
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("netd: removing the stale socket: %w", err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("netd: %w", err)
	}
	if err := os.Chmod(path, socketMode); err != nil {
		l.Close()
		return nil, fmt.Errorf("netd: %w", err)
	}
	return l, nil
}

// checkStale returns nil when nobody accepts on the socket at path, and an
// error naming the live server otherwise.
func checkStale(path string) error {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		return fmt.Errorf("netd: checking the existing socket %s: %w", path, err)
	}
	c.Close()
	if pid, ok := askPID(path); ok {
		return fmt.Errorf("netd already running on %s (pid %d): %w", path, pid, syscall.EADDRINUSE)
	}
	return fmt.Errorf("another netd is serving %s: %w", path, syscall.EADDRINUSE)
}

// askPID asks the server on path for its pid.
func askPID(path string) (int, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	tr := unixTransport(path)
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://netd/v1/version", nil)
	if err != nil {
		return 0, false
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var v Version
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil || v.Name != serverName || v.PID <= 0 {
		return 0, false
	}
	return v.PID, true
}
