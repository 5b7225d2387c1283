// Package ecsstate is ECS's state as stored: the records of clusters,
// services, container instances, tasks, assignments, task definitions and
// client tokens, their store keys and statuses. It is the layer that ECS's
// API handlers (package ecs) and its controllers (package taskgc, and the
// ones still in package ecs, docs/ecs.md "Package layout") share, so that
// dependencies run one way: handlers and controllers import ecsstate,
// never each other. It holds data and pure helpers on it; no I/O.
package ecsstate
