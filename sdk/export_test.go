package sdk

// WithOnlyFakeContractVersion makes Serve offer version v alone, served
// by version 2's service: a driver built against a future SDK, for the
// version negotiation tests.
func WithOnlyFakeContractVersion(v int) ServeOption {
	return func(c *serveConfig) {
		c.versions = nil
		c.fakeVersions = []int{v}
	}
}
