// Package dockerdriver is the agent's layer over Docker Engine: a Driver
// whose every call carries a named timeout and maps Docker's errors to
// Berth's error kinds (package errs), image pulls with an inactivity
// watchdog and ECS's pull behaviours, an event stream that can resume from a
// timestamp, and the pure translation of an ECS container definition into
// Docker's container, host and networking configuration (ContainerConfig).
//
// The package knows nothing of task lifecycles: the agent's task runner
// decides what to create, start and stop, and this package does it.
// docs/docker-driver.md has the timeouts, the pull behaviours, the
// translation table, the labels and the error mapping.
//
// Docker Engine 20.10 (API 1.41) is the oldest daemon supported; the client
// negotiates the API version with the daemon on first contact.
package dockerdriver
