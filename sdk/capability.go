package sdk

import (
	driverv2 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v2"
)

// Capability is an optional feature a driver declares in Info. A driver
// answers a call for a capability it did not declare with ErrUnsupported.
type Capability int

// Capabilities.
const (
	CapabilityUnknown Capability = iota
	CapabilityPause
	CapabilityGracefulShutdown
	CapabilityConsoleLog
	CapabilityGuestChannel
	CapabilityDiskHotplug
	CapabilityNICHotplug
	CapabilitySnapshot
	CapabilityResize
	CapabilityRecover
)

var capabilityNames = map[Capability]string{
	CapabilityPause:            "pause",
	CapabilityGracefulShutdown: "graceful_shutdown",
	CapabilityConsoleLog:       "console_log",
	CapabilityGuestChannel:     "guest_channel",
	CapabilityDiskHotplug:      "disk_hotplug",
	CapabilityNICHotplug:       "nic_hotplug",
	CapabilitySnapshot:         "snapshot",
	CapabilityResize:           "resize",
	CapabilityRecover:          "recover",
}

// String returns the capability's snake_case name.
func (c Capability) String() string {
	if n, ok := capabilityNames[c]; ok {
		return n
	}
	return "unknown"
}

var capabilityToWire = map[Capability]driverv2.Capability{
	CapabilityPause:            driverv2.Capability_CAPABILITY_PAUSE,
	CapabilityGracefulShutdown: driverv2.Capability_CAPABILITY_GRACEFUL_SHUTDOWN,
	CapabilityConsoleLog:       driverv2.Capability_CAPABILITY_CONSOLE_LOG,
	CapabilityGuestChannel:     driverv2.Capability_CAPABILITY_GUEST_CHANNEL,
	CapabilityDiskHotplug:      driverv2.Capability_CAPABILITY_DISK_HOTPLUG,
	CapabilityNICHotplug:       driverv2.Capability_CAPABILITY_NIC_HOTPLUG,
	CapabilitySnapshot:         driverv2.Capability_CAPABILITY_SNAPSHOT,
	CapabilityResize:           driverv2.Capability_CAPABILITY_RESIZE,
	CapabilityRecover:          driverv2.Capability_CAPABILITY_RECOVER,
}

var capabilityFromWire = invert(capabilityToWire)

func invert[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}
