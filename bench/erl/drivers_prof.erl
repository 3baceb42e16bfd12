%% The Erlang side of bench/drivers-profile.ts: a pool of clients that keep their connections between
%% measured runs, so that one run can be charged to the OS processes that served it (the ts-cnode node,
%% this emulator, the Postgres backends) and two ts-cnode nodes can be measured turn by turn. The select
%% loop is drivers_bench's (compiled beside this module).
-module(drivers_prof).
-export([open/4, run/3, close/1, backend_pids/1]).

%% Clients processes with a connection each, through Mod (pg_sync or seed_pg_sync) to the node set in
%% the ts_cnode application environment at the time of the call. -> Pool (an opaque handle)
open(Name, Mod, ConnStr, Clients) ->
    Self = self(),
    Pids = [spawn(fun() -> client(Self, Mod, ConnStr) end) || _ <- lists:seq(1, Clients)],
    [receive {ready, P} -> ok after 30000 -> exit(client_start_timeout) end || P <- Pids],
    persistent_term:put({?MODULE, Name}, {Mod, Pids}),
    Name.

%% Every client runs Query back to back for Millis ms. -> {Selects, Micros, Errors}
run(Name, Query, Millis) ->
    {_Mod, Pids} = persistent_term:get({?MODULE, Name}),
    Self = self(),
    [P ! {go, Self, Query, Millis} || P <- Pids],
    T0 = erlang:monotonic_time(microsecond),
    Results = [receive {count, P, C, E} -> {C, E} end || P <- Pids],
    T1 = erlang:monotonic_time(microsecond),
    {lists:sum([C || {C, _} <- Results]), T1 - T0, lists:sum([E || {_, E} <- Results])}.

%% The Postgres backend pid of each client's connection (select pg_backend_pid()).
backend_pids(Name) ->
    {_Mod, Pids} = persistent_term:get({?MODULE, Name}),
    Self = self(),
    [P ! {backend_pid, Self} || P <- Pids],
    [receive {backend_pid, P, B} -> B end || P <- Pids].

close(Name) ->
    {_Mod, Pids} = persistent_term:get({?MODULE, Name}),
    Self = self(),
    [P ! {close, Self} || P <- Pids],
    [receive {closed, P} -> ok after 10000 -> ok end || P <- Pids],
    persistent_term:erase({?MODULE, Name}),
    ok.

client(Parent, Mod, ConnStr) ->
    {ok, Port} = Mod:connect(ConnStr),
    {ok, _} = Mod:select(Port, "select 1"),
    Parent ! {ready, self()},
    serve(Mod, Port).

serve(Mod, Port) ->
    receive
        {go, From, Query, Millis} ->
            Deadline = erlang:monotonic_time(millisecond) + Millis,
            {C, E} = drivers_bench:select_loop(Mod, Port, Query, Deadline, 0, 0),
            From ! {count, self(), C, E},
            serve(Mod, Port);
        {backend_pid, From} ->
            {ok, [_, [B]]} = Mod:select(Port, "select pg_backend_pid()"),
            From ! {backend_pid, self(), list_to_integer(B)},
            serve(Mod, Port);
        {close, From} ->
            Mod:disconnect(Port),
            From ! {closed, self()}
    end.
