"""A small MCP server the MCP gateway tests aggregate (prefix `local`), written with the official
MCP Python SDK and served over Streamable HTTP at http://127.0.0.1:<port>/mcp:

    python tests/e2e/mcp_upstream.py --port N

It has the tools `weather(city)` and `slow(seconds)` (which reports progress), the fixed
resource `weather://paris`, the resource template `weather://{city}` and the prompt
`forecast(city)`. Stateful sessions (it hands out `Mcp-Session-Id`s) and SSE answers, the SDK's
defaults. With `--page-size N`, `tools/list` answers N tools a page, with a `nextCursor`
(the SDK's own server never pages)."""
from __future__ import annotations

import argparse

import anyio
from mcp import types
from mcp.server.fastmcp import Context, FastMCP

NAME = "tollgate-e2e-local"
INSTRUCTIONS = "Weather reports for any city."
SLOW_STEPS = 4


def weather_report(city: str) -> str:
    return f"Sunny in {city}"


def build(port: int, page_size: int = 0) -> FastMCP:
    server = FastMCP(NAME, instructions=INSTRUCTIONS, host="127.0.0.1", port=port, log_level="WARNING")

    @server.tool(description="The weather in a city")
    def weather(city: str) -> str:
        return weather_report(city)

    @server.tool(description=f"Waits `seconds`, reporting progress in {SLOW_STEPS} steps")
    async def slow(seconds: float, ctx: Context) -> str:
        for step in range(1, SLOW_STEPS + 1):
            await anyio.sleep(seconds / SLOW_STEPS)
            await ctx.report_progress(step, SLOW_STEPS, f"step {step} of {SLOW_STEPS}")
        return f"done after {seconds}s"

    @server.resource("weather://paris", name="paris", mime_type="text/plain",
                     description="Today's weather in Paris")
    def paris() -> str:
        return "Paris: sunny, 21 degrees"

    @server.resource("weather://{city}", name="city-weather", mime_type="text/plain",
                     description="Today's weather in a city")
    def city_weather(city: str) -> str:
        return f"{city}: sunny"

    @server.prompt(description="Asks for a forecast")
    def forecast(city: str) -> str:
        return f"Write tomorrow's weather forecast for {city}."

    if page_size > 0:
        @server._mcp_server.list_tools()
        async def paged_tools(request: types.ListToolsRequest) -> types.ListToolsResult:
            # (The SDK finds this handler's parameter by that exact annotation, no Optional.)
            tools = await server.list_tools()
            # It passes None to refresh its tool cache before a call: that gets them all.
            if request is None:
                return types.ListToolsResult(tools=tools)
            cursor = request.params.cursor if request.params else None
            start = int(cursor or 0)
            end = start + page_size
            return types.ListToolsResult(tools=tools[start:end], nextCursor=str(end) if end < len(tools) else None)

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--page-size", type=int, default=0, help="tools a tools/list page holds (0: all)")
    parser.add_argument("--transport", choices=("streamable-http", "sse"), default="streamable-http",
                        help="streamable-http serves /mcp; sse (the older HTTP+SSE transport) serves /sse")
    args = parser.parse_args()
    build(args.port, args.page_size).run(transport=args.transport)


if __name__ == "__main__":
    main()
