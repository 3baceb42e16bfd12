%% A small Erlang gen_server that examples/call-erlang.ts calls from TypeScript.
-module(kv_server).
-behaviour(gen_server).
-export([start/0, init/1, handle_call/3, handle_cast/2]).

start() -> gen_server:start({local, kv}, ?MODULE, #{}, []).

init(Map) -> {ok, Map}.

handle_call({put, K, V}, _From, M) -> {reply, ok, M#{K => V}};
handle_call({get, K}, _From, M) -> {reply, maps:find(K, M), M};
handle_call(keys, _From, M) -> {reply, lists:sort(maps:keys(M)), M}.

handle_cast({delete, K}, M) -> {noreply, maps:remove(K, M)}.
