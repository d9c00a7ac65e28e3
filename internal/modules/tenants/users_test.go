package tenants

import (
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
)

func TestCapsuleUsersIncludes(t *testing.T) {
	users := newCapsuleUsers()
	users.add(subject{groupKind, "projectcapsule.dev"})
	users.add(subject{userKind, "bob"})
	users.add(subject{serviceAccountKind, "system:serviceaccount:ci:robot"})
	users.add(subject{userKind, "system:serviceaccount:legacy:sa"}) // filed as a service account
	users.ignoredGroups["cluster-admins"] = struct{}{}
	sa := func(ns, name string, extra ...string) *user.DefaultInfo {
		return &user.DefaultInfo{Name: "system:serviceaccount:" + ns + ":" + name,
			Groups: append([]string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}, extra...)}
	}

	tests := []struct {
		name string
		user user.Info
		want bool
	}{
		{"member of the users group", &user.DefaultInfo{Name: "alice", Groups: []string{"projectcapsule.dev"}}, true},
		{"listed user name", &user.DefaultInfo{Name: "bob"}, true},
		{"neither", &user.DefaultInfo{Name: "mallory", Groups: []string{"system:authenticated"}}, false},
		{"group member with an ignored group", &user.DefaultInfo{Name: "alice", Groups: []string{"projectcapsule.dev", "cluster-admins"}}, false},
		{"listed user name with an ignored group", &user.DefaultInfo{Name: "bob", Groups: []string{"cluster-admins"}}, true},
		{"listed service account", sa("ci", "robot"), true},
		{"service account listed as a user name", sa("legacy", "sa"), true},
		{"other service account", sa("ci", "other"), false},
		{"kube-system service account in the users group", sa("kube-system", "robot", "projectcapsule.dev"), false},
		{"user name that only looks like a listed service account", &user.DefaultInfo{Name: "system:serviceaccount:ci:robot"}, false},
		{"group name used as user name", &user.DefaultInfo{Name: "projectcapsule.dev"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := users.includes(tt.user); got != tt.want {
				t.Errorf("includes(%s %v) = %v, want %v", tt.user.GetName(), tt.user.GetGroups(), got, tt.want)
			}
		})
	}
	if (*capsuleUsers)(nil).includes(&user.DefaultInfo{Name: "bob"}) {
		t.Error("without a CapsuleConfiguration nobody is a Capsule user")
	}
}
