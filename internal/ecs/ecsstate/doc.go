// Package ecsstate is ECS's state as stored: the records of clusters,
// services, container instances, tasks, assignments, task definitions and
// client tokens, their store keys and statuses. It is the layer that ECS's
// API handlers (package ecs) and its controllers (packages instancemon and
// taskgc, and the service controller still in package ecs) share, so that
// dependencies run one way: handlers and controllers import ecsstate,
// never each other (docs/ecs.md, "Package layout").
//
// Beside the data: the reachability decision the service controller and
// the lost-instance monitor share (DecideReachable, pure), and the store
// helpers they share (KickOnChange, MaxBatchTasks).
package ecsstate
