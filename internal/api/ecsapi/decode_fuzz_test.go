package ecsapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to every ECS operation's decoder
// (awsproto.DecodeJSON plus the generated Validate). It must never panic,
// and an input it accepts must survive a JSON round trip unchanged.
func FuzzDecode(f *testing.F) {
	svc := (&Handlers{}).Service()
	names := OperationNames()
	seeds := []string{
		`{}`, ``, `{"clusterName":"web","tags":[{"key":"a","value":"b"}]}`,
		`{"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":32,"portMappings":[{"containerPort":80}]}]}`,
		`{"family":"f","containerDefinitions":[{"name":"a","dependsOn":[{"containerName":"b","condition":"HEALTHY"}]}],"networkMode":"awsvpc"}`,
		`{"cluster":1}`, `{"clusters":["a",null]}`, `[1,2]`, `{"maxResults":-1}`, `{"registeredAt":"x"}`,
	}
	for i, s := range seeds {
		f.Add(uint16(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, opIndex uint16, body []byte) {
		op := svc.Operations[names[int(opIndex)%len(names)]]
		in, err := op.Decode(body, nil)
		if err != nil {
			return
		}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("%s: accepted input does not marshal: %v", op.Name, err)
		}
		again, err := op.Decode(b, nil)
		if err != nil {
			t.Fatalf("%s: re-decoding %s failed: %v", op.Name, b, err)
		}
		if !reflect.DeepEqual(in, again) {
			t.Fatalf("%s: round trip changed the input:\n%s", op.Name, b)
		}
	})
}

func TestOperationNamesSorted(t *testing.T) {
	if !slices.IsSorted(OperationNames()) || len(OperationNames()) != 77 {
		t.Fatal("operation names")
	}
}
