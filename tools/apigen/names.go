package main

import (
	"strconv"
	"strings"
	"unicode"
)

// words splits s at every character that cannot be part of a Go identifier.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	})
}

// exportName makes an exported Go identifier of a model name, changing as
// little as possible: "clusterName" -> "ClusterName", "TrailARN" stays,
// "__string" -> "String". Initialisms are not rewritten.
func exportName(s string) string {
	var b strings.Builder
	for _, w := range words(s) {
		b.WriteString(strings.ToUpper(w[:1]))
		b.WriteString(w[1:])
	}
	return leadLetter(b.String())
}

// enumValueName makes the suffix of an enum constant's name from the value:
// "bridge" -> "Bridge", "FARGATE_SPOT" -> "FargateSpot",
// "ecs.availability-zone" -> "EcsAvailabilityZone". Words written in capitals
// are title-cased; other words keep their case after the first letter.
func enumValueName(v string) string {
	var b strings.Builder
	for _, w := range words(v) {
		if strings.ToUpper(w) == w {
			w = strings.ToLower(w)
		}
		b.WriteString(strings.ToUpper(w[:1]))
		b.WriteString(w[1:])
	}
	return b.String()
}

// leadLetter makes s start with a letter, as an exported identifier must.
func leadLetter(s string) string {
	if s == "" {
		return "X"
	}
	if c := s[0]; c >= '0' && c <= '9' {
		return "X" + s
	}
	return s
}

// namer hands out identifiers unique within one scope.
type namer map[string]bool

// claim returns want, or want followed by the smallest number from 2 that
// makes it unused, and marks the result used.
func (n namer) claim(want string) string {
	name := want
	for i := 2; n[name]; i++ {
		name = want + strconv.Itoa(i)
	}
	n[name] = true
	return name
}

// packageName makes the Go package name of a model file's base name:
// "ecs" -> "ecsapi", "application-autoscaling" -> "applicationautoscalingapi".
func packageName(base string) string {
	return strings.ToLower(strings.Join(words(base), "")) + "api"
}
