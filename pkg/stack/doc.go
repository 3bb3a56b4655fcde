// Package stack is the network layer: the Stack owns the NICs (one per
// link endpoint, plus "lo" and 802.1Q sub-interfaces), their addresses,
// neighbour caches (ARP, NDP), the routing table, IPv4 and IPv6 with
// fragmentation, reassembly, options and forwarding, ICMP and ICMPv6,
// IGMP and MLD, SLAAC, and the counters Linux keeps in /proc/net/snmp and
// /proc/net/snmp6. Transport protocols plug in through RegisterTransport;
// raw sockets through AddRawHandler.
//
// Data path. Inbound, a link endpoint's reader goroutine calls
// NIC.DeliverFrame, and the frame is processed synchronously down the
// layers on that goroutine (Ethernet/VLAN demux, ARP/NDP, IP, ICMP, the
// transport handler). Outbound, a transport builds its header into a Packet
// with headroom, asks FindRoute for a Route and calls WritePacket, which
// prepends the IP header, fragments to the route's MTU, resolves the next
// hop and hands the frame to the endpoint, or to a TxBatch that writes
// the frames of several packets in one WritePackets call.
//
// Buffers. A frame handed to DeliverFrame belongs to the stack. Its bytes
// are never modified after the IP layer has validated them, so transport
// and raw handlers may keep views of what they are given (zero copy). A
// Packet passed to WritePacket belongs to the stack from then on.
//
// Timers use the time package only, so a whole network of stacks runs
// under testing/synctest.
//
// Lock order (outermost first): Stack.mu, NIC.mu, then the leaf locks:
// route.Policy (which takes route.Table's), neighbor.Cache, fragment.Reassembler, the PMTU cache, the
// ICMP rate limiter, the counters (atomic). No lock is held while a
// transport or raw handler runs or while a link endpoint writes.
package stack
