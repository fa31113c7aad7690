package campaign

import "hotline/ticketing/org"

// CanRead is the rule of who reads campaigns, their progress and results (and campaign.* events on the stream):
// campaign managers, supervisors and admins, as the campaign API allows.
func CanRead(a org.Actor) bool {
	switch a.Role {
	case org.RoleCampaignManager, org.RoleSupervisor, org.RoleAdmin:
		return true
	}
	return false
}
