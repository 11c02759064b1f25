"""HTTP plumbing shared by the ingress and the simulator: request heads and bodies, bounded."""
