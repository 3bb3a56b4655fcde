package netd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stackbox/stackbox/pkg/host"
)

// Cred identifies the process at the other end of a control connection.
type Cred struct {
	UID    uint32
	GID    uint32   // primary group
	Groups []uint32 // supplementary groups, when known
	PID    int32
}

// ServerOptions configure a Server. The zero value is a root-only server
// that reads peer credentials with SO_PEERCRED.
type ServerOptions struct {
	// AdminGID is a group whose members may change the configuration as
	// root may. 0 (unset) means root only.
	AdminGID uint32
	// PeerCred returns the credentials of the peer of an accepted
	// connection; nil means PeerCredOf (SO_PEERCRED). Tests inject others.
	PeerCred func(net.Conn) (Cred, error)
	// Version is reported by GET /v1/version.
	Version string
	// ResolvConf is the path of the resolv.conf the daemon writes,
	// reported by GET /v1/version.
	ResolvConf string
	// ErrorLog receives the HTTP server's errors; nil: the log package's
	// standard logger.
	ErrorLog *log.Logger
}

// Server serves a host.Host on the control protocol.
type Server struct {
	h    host.Host
	opts ServerOptions
	hs   *http.Server
	data dataState
}

type credKey struct{}

// credResult is what ConnContext learned about a connection's peer.
type credResult struct {
	cred Cred
	err  error
}

// NewServer returns a server for h. It serves nothing until Serve.
func NewServer(h host.Host, opts ServerOptions) *Server {
	if opts.PeerCred == nil {
		opts.PeerCred = PeerCredOf
	}
	s := &Server{h: h, opts: opts}
	s.hs = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          opts.ErrorLog,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			cred, err := s.opts.PeerCred(c)
			return context.WithValue(ctx, credKey{}, credResult{cred, err})
		},
	}
	return s
}

// Serve accepts control connections on l until Shutdown; it returns
// http.ErrServerClosed after a Shutdown.
func (s *Server) Serve(l net.Listener) error { return s.hs.Serve(l) }

// Shutdown stops accepting, lets the requests in flight finish (until ctx
// ends) and closes the listeners. It does not close the host.
// Data sockets are closed as a process's are when it exits: TCP
// connections end with a FIN.
func (s *Server) Shutdown(ctx context.Context) error {
	s.data.closeAll()
	return s.hs.Shutdown(ctx)
}

// Close closes the listeners, every connection and every data socket at
// once.
func (s *Server) Close() error {
	s.data.closeAll()
	return s.hs.Close()
}

// Handler returns the protocol's HTTP handler. Requests whose context
// carries no credentials (not served by Serve) are treated as an
// unprivileged peer.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/version", s.version)
	mux.HandleFunc("GET /v1/interfaces", s.interfaces)
	mux.HandleFunc("GET /v1/interfaces/{name}", s.iface)
	mux.HandleFunc("PATCH /v1/interfaces/{name}", s.admin(s.patchIface))
	mux.HandleFunc("POST /v1/interfaces/{name}/addresses", s.admin(s.addAddress))
	mux.HandleFunc("DELETE /v1/interfaces/{name}/addresses/{addr}", s.admin(s.delAddress))
	mux.HandleFunc("GET /v1/routes", s.routes)
	mux.HandleFunc("POST /v1/routes", s.admin(s.addRoute))
	mux.HandleFunc("DELETE /v1/routes", s.admin(s.delRoute))
	mux.HandleFunc("GET /v1/neighbors", s.neighbors)
	mux.HandleFunc("POST /v1/neighbors", s.admin(s.addNeighbor))
	mux.HandleFunc("DELETE /v1/neighbors/{dev}/{addr}", s.admin(s.delNeighbor))
	mux.HandleFunc("DELETE /v1/neighbors/{addr}", s.admin(s.delNeighbor)) // on any interface
	mux.HandleFunc("GET /v1/sockets", s.sockets)
	mux.HandleFunc("GET /v1/counters", s.counters)
	mux.HandleFunc("POST /v1/sockets", s.openSocket)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, &host.Error{Errno: syscall.EOPNOTSUPP,
			Msg: fmt.Sprintf("netd: no endpoint %s %s (see /v1/interfaces, /v1/routes, /v1/neighbors, /v1/sockets, /v1/counters)", r.Method, r.URL.Path)})
	})
	return mux
}

// mayConfigure reports whether the request's peer may change the
// configuration, and if not, the error to answer.
func (s *Server) mayConfigure(r *http.Request) error {
	cr, ok := r.Context().Value(credKey{}).(credResult)
	if !ok {
		return host.Errorf(syscall.EPERM, "netd: %s %s: Operation not permitted (netd: peer credentials unknown)", r.Method, r.URL.Path)
	}
	if cr.err != nil {
		return host.Errorf(syscall.EPERM, "netd: %s %s: Operation not permitted (netd: cannot read peer credentials: %v)", r.Method, r.URL.Path, cr.err)
	}
	c := cr.cred
	// Root, and the user the daemon runs as: a netd started without root
	// (on the simulated network) is its user's to configure.
	if c.UID == 0 || c.UID == uint32(os.Geteuid()) {
		return nil
	}
	if g := s.opts.AdminGID; g != 0 && (c.GID == g || slices.Contains(c.Groups, g)) {
		return nil
	}
	need := "root"
	if s.opts.AdminGID != 0 {
		need = fmt.Sprintf("root or group %d", s.opts.AdminGID)
	}
	return host.Errorf(syscall.EPERM, "netd: %s %s: Operation not permitted (netd: configuration needs %s; you are uid %d)", r.Method, r.URL.Path, need, c.UID)
}

// admin wraps a mutating handler with the access check and the body limit.
func (s *Server) admin(next func(http.ResponseWriter, *http.Request, []byte) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.mayConfigure(r); err != nil {
			answerError(w, err)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				answerError(w, einval("request body over %d bytes", maxBody))
				return
			}
			answerError(w, einval("reading request body: %v", err))
			return
		}
		if err := next(w, r, body); err != nil {
			answerError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func answerError(w http.ResponseWriter, err error) {
	he := asHostError(err)
	writeError(w, StatusOf(he.Errno), he)
}

func writeError(w http.ResponseWriter, status int, he *host.Error) {
	writeJSON(w, status, he)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(&host.Error{Errno: syscall.EIO, Msg: "netd: encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// answer writes v as the answer of a GET, or err.
func answer[T any](w http.ResponseWriter, v T, err error) {
	if err != nil {
		answerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Version{Name: serverName, API: APIVersion, PID: os.Getpid(), Version: s.opts.Version, ResolvConf: s.opts.ResolvConf})
}

func (s *Server) interfaces(w http.ResponseWriter, r *http.Request) {
	v, err := s.h.Interfaces(r.Context())
	answer(w, nonNil(v), err)
}

func (s *Server) iface(w http.ResponseWriter, r *http.Request) {
	v, err := s.h.Interface(r.Context(), r.PathValue("name"))
	answer(w, v, err)
}

func (s *Server) patchIface(w http.ResponseWriter, r *http.Request, body []byte) error {
	p, err := decodePatch(body)
	if err != nil {
		return err
	}
	ctx, dev := r.Context(), r.PathValue("name")
	if p.MTU != nil {
		if err := s.h.SetMTU(ctx, dev, *p.MTU); err != nil {
			return err
		}
	}
	if p.MAC != nil {
		if err := s.h.SetMAC(ctx, dev, *p.MAC); err != nil {
			return err
		}
	}
	if p.Promisc != nil {
		if err := s.h.SetPromisc(ctx, dev, *p.Promisc); err != nil {
			return err
		}
	}
	if p.Up != nil {
		if err := s.h.SetUp(ctx, dev, *p.Up); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) addAddress(w http.ResponseWriter, r *http.Request, body []byte) error {
	a, err := decodeAddress(body)
	if err != nil {
		return err
	}
	return s.h.AddAddress(r.Context(), r.PathValue("name"), a.Prefix, a.Broadcast)
}

func (s *Server) delAddress(w http.ResponseWriter, r *http.Request, body []byte) error {
	a, err := parseAddrParam(r.PathValue("addr"))
	if err != nil {
		return err
	}
	return s.h.DelAddress(r.Context(), r.PathValue("name"), a)
}

func (s *Server) routes(w http.ResponseWriter, r *http.Request) {
	v, err := s.h.Routes(r.Context())
	answer(w, nonNil(v), err)
}

func (s *Server) addRoute(w http.ResponseWriter, r *http.Request, body []byte) error {
	rt, err := decodeRoute(body, nil)
	if err != nil {
		return err
	}
	return s.h.AddRoute(r.Context(), rt)
}

func (s *Server) delRoute(w http.ResponseWriter, r *http.Request, body []byte) error {
	rt, err := decodeRoute(body, r.URL.Query())
	if err != nil {
		return err
	}
	return s.h.DelRoute(r.Context(), rt)
}

func (s *Server) neighbors(w http.ResponseWriter, r *http.Request) {
	v, err := s.h.Neighbors(r.Context())
	answer(w, nonNil(v), err)
}

func (s *Server) addNeighbor(w http.ResponseWriter, r *http.Request, body []byte) error {
	n, err := decodeNeighbor(body)
	if err != nil {
		return err
	}
	return s.h.AddNeighbor(r.Context(), n)
}

func (s *Server) delNeighbor(w http.ResponseWriter, r *http.Request, body []byte) error {
	a, err := parseAddrParam(r.PathValue("addr"))
	if err != nil {
		return err
	}
	return s.h.DelNeighbor(r.Context(), r.PathValue("dev"), a)
}

// sockets lists every socket, as /proc/net/* does for every user, but
// names the owning process (netstat -p) only to root and to the socket's
// owner, as Linux does: other users cannot read /proc/PID/fd.
func (s *Server) sockets(w http.ResponseWriter, r *http.Request) {
	v, err := s.h.Sockets(r.Context())
	if err == nil {
		cr, ok := r.Context().Value(credKey{}).(credResult)
		if root := ok && cr.err == nil && cr.cred.UID == 0; !root {
			for i := range v {
				if !ok || cr.err != nil || v[i].UID != cr.cred.UID {
					v[i].PID, v[i].Program = 0, ""
				}
			}
		}
	}
	answer(w, nonNil(v), err)
}

func (s *Server) counters(w http.ResponseWriter, r *http.Request) {
	v, err := s.h.Counters(r.Context())
	answer(w, nonNil(v), err)
}

// PeerCredOf reads the credentials of a Unix socket peer with SO_PEERCRED,
// and its supplementary groups with SO_PEERGROUPS where the kernel has it
// (Linux 4.13+). Connections of other kinds have no credentials.
func PeerCredOf(c net.Conn) (Cred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Cred{}, fmt.Errorf("%T is not a Unix socket connection", c)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	var cred Cred
	var credErr error
	err = rc.Control(func(fd uintptr) {
		u, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			credErr = fmt.Errorf("SO_PEERCRED: %w", err)
			return
		}
		cred = Cred{UID: u.Uid, GID: u.Gid, PID: u.Pid}
		cred.Groups = peerGroups(int(fd))
	})
	if err != nil {
		return Cred{}, err
	}
	return cred, credErr
}

// peerGroups reads SO_PEERGROUPS; nil when the kernel cannot say.
func peerGroups(fd int) []uint32 {
	n := 32
	for range 4 {
		buf := make([]uint32, n)
		size := uint32(4 * n)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch e {
		case 0:
			return buf[:size/4]
		case unix.ERANGE:
			n = int(size/4) + 1
			continue
		}
		return nil
	}
	return nil
}
