"""The generated customer world: realistic CRM data for HubSpot, Salesforce and Dataverse, plus the ground
truth an independent oracle computed from the same plan (see sandbox/world/README.md)."""

from sandbox.world.generator import World, generate, generate_plan, read_world, world_from_plan, write_world

__all__ = ["World", "generate", "generate_plan", "read_world", "world_from_plan", "write_world"]
