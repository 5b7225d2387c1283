// Package placement decides where ECS tasks run: it parses and evaluates
// ECS's cluster query language (the expressions of memberOf constraints
// and of ListContainerInstances filters) and places tasks on container
// instances the way ECS's EC2 launch type does, with ECS's failure reasons.
//
// Everything here is a pure function of its arguments: no I/O, no clock,
// and randomness only from the *rand.Rand the caller passes in. Place
// works on a snapshot of the cluster and never modifies it; the caller
// commits a placement through one applier that re-checks each task with
// Check against fresh state, and plans again if the check fails.
//
// The language (grammar and semantics), the filters, the strategies, the
// failure reasons and where Berth differs from ECS are described in
// docs/placement.md.
package placement
