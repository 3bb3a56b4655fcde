package transport

import (
	"fmt"
	"sync"
	"syscall"
)

// Cred is the identity of whoever opens a socket (a netd client's peer
// credentials, or the process itself in standalone mode). Privileged
// stands for CAP_NET_RAW / CAP_NET_BIND_SERVICE.
type Cred struct {
	UID, GID   uint32
	Privileged bool
}

// NewRequest is what a protocol's constructor is asked for.
type NewRequest struct {
	Family   int // syscall.AF_INET or AF_INET6
	Type     int // syscall.SOCK_DGRAM, SOCK_RAW, SOCK_STREAM
	Protocol int // as given to socket(2); 0 when the caller left it to us
	Cred     Cred
}

// Constructor makes an endpoint for a request. It checks what it needs of
// the credentials (raw sockets: EPERM without privilege).
type Constructor func(NewRequest) (Endpoint, error)

type regKey struct{ family, typ, proto int }

// Registry maps socket(family, type, protocol) to the protocol that serves
// it, as Linux's inetsw table does. Protocol 0 registered for a type is
// the type's default (UDP for SOCK_DGRAM, TCP for SOCK_STREAM); protocol
// -1 is a wildcard (SOCK_RAW takes any protocol number).
type Registry struct {
	mu sync.RWMutex
	m  map[regKey]Constructor
}

// Register makes c serve (family, type, protocol). The default protocol
// of a type should also be registered under its own number.
func (r *Registry) Register(family, typ, protocol int, c Constructor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[regKey]Constructor)
	}
	r.m[regKey{family, typ, protocol}] = c
}

// New creates an endpoint. The errors are socket(2)'s: EAFNOSUPPORT for an
// unknown family, ESOCKTNOSUPPORT for an unknown type, EPROTONOSUPPORT for
// a protocol the type does not carry.
func (r *Registry) New(req NewRequest) (Endpoint, error) {
	if req.Family != syscall.AF_INET && req.Family != syscall.AF_INET6 {
		return nil, fmt.Errorf("socket: family %d: %w", req.Family, syscall.EAFNOSUPPORT)
	}
	if req.Protocol < 0 || req.Protocol > 255 {
		return nil, syscall.EINVAL
	}
	r.mu.RLock()
	c, ok := r.m[regKey{req.Family, req.Type, req.Protocol}]
	if !ok {
		c, ok = r.m[regKey{req.Family, req.Type, -1}]
		if ok && req.Protocol == 0 {
			ok = false // SOCK_RAW needs a protocol (Linux: EPROTONOSUPPORT)
		}
	}
	known := ok
	if !known {
		for k := range r.m {
			if k.family == req.Family && k.typ == req.Type {
				known = true
				break
			}
		}
	}
	r.mu.RUnlock()
	if !ok {
		if !known {
			return nil, fmt.Errorf("socket: type %d: %w", req.Type, syscall.ESOCKTNOSUPPORT)
		}
		return nil, fmt.Errorf("socket: protocol %d for type %d: %w", req.Protocol, req.Type, syscall.EPROTONOSUPPORT)
	}
	return c(req)
}
