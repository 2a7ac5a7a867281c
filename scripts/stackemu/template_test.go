package stackemu

import (
	"slices"
	"strings"
	"testing"
)

func TestResolver(t *testing.T) {
	r := &Resolver{Region: "eu-west-1", Account: "111122223333", StackName: "s",
		Physical: map[string]Physical{"Q": {Ref: "http://q", Attrs: map[string]string{"Arn": "arn:q"}}}}
	cases := []struct {
		in   any
		want string
	}{
		{map[string]any{"Ref": "Q"}, "http://q"},
		{map[string]any{"Fn::GetAtt": []any{"Q", "Arn"}}, "arn:q"},
		{map[string]any{"Fn::Join": []any{":", []any{"a", map[string]any{"Ref": "AWS::Region"}, map[string]any{"Ref": "AWS::AccountId"}}}}, "a:eu-west-1:111122223333"},
		{map[string]any{"Fn::Sub": "${AWS::StackName}/${Q.Arn}/${Q}"}, "s/arn:q/http://q"},
		{map[string]any{"Fn::Select": []any{1.0, []any{"x", map[string]any{"Ref": "Q"}}}}, "http://q"},
		{5.0, "5"},
	}
	for _, c := range cases {
		if got, err := r.String(c.in); err != nil || got != c.want {
			t.Errorf("%v = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []any{
		map[string]any{"Ref": "Missing"},
		map[string]any{"Fn::GetAtt": []any{"Q", "Nope"}},
		map[string]any{"Fn::ImportValue": "x"},
		map[string]any{"Fn::Sub": "${Missing}"},
	} {
		if got, err := r.String(bad); err == nil {
			t.Errorf("%v resolved to %q", bad, got)
		}
	}
	nested, err := r.Resolve(map[string]any{"a": []any{map[string]any{"Ref": "Q"}}, "b": "plain"})
	if err != nil || nested.(map[string]any)["a"].([]any)[0] != "http://q" {
		t.Errorf("nested: %v %v", nested, err)
	}
	refs := Refs(map[string]any{"x": []any{map[string]any{"Ref": "A"}, map[string]any{"Fn::GetAtt": []any{"B", "Arn"}}, map[string]any{"Ref": "AWS::Region"}}})
	slices.Sort(refs)
	if strings.Join(refs, ",") != "A,B" {
		t.Errorf("refs %v", refs)
	}
	if constructName("Stream790BDEE4") != "stream" || constructName("JobsQueue86ED6666") != "jobsqueue" || constructName("Short") != "short" {
		t.Error("constructName")
	}
}
