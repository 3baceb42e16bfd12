%% The Erlang side of the ts-cnode benchmark: the client that drives every target the same way, and the
%% BEAM anchors (an echo process and a gen_server) that run on a second BEAM node.
-module(bench_client).
-behaviour(gen_server).

-export([payload/1, echo/5, call/5, start_echo/0, start_gen_server/0, spawn_idle/1, stop_idle/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% The shapes of the issue. Built once per run, outside the timed loop.
payload(small_tuple) -> {hello, 42, <<"world">>, 3.5, [1, 2, 3]};
payload(bin_1k) -> binary:copy(<<"x">>, 1024);
payload(map_100) ->
    maps:from_list([{list_to_atom("key_" ++ integer_to_list(I)),
                     case I rem 2 of 0 -> I * 1000; 1 -> <<"value">> end} || I <- lists:seq(1, 100)]);
payload(bin_1m) -> binary:copy(<<"y">>, 1024 * 1024).

%% Echo round trips: Clients processes each send {self(), Payload} to {echo, Target} and wait for Payload,
%% over and over, for WarmMs (not counted) and then MeasureMs. Returns {RoundTrips, Microseconds}: the
%% round trips started inside the measured window and the time from its start until the last one ended.
echo(Target, Shape, Clients, WarmMs, MeasureMs) ->
    Payload = payload(Shape),
    Dest = {echo, Target},
    %% One round trip first, so the connection set-up is not measured (and a dead target fails fast).
    Dest ! {self(), Payload},
    receive Payload -> ok after 10000 -> exit({no_echo_from, Target}) end,
    run(Clients, WarmMs, MeasureMs, fun() ->
        Dest ! {self(), Payload},
        receive Payload -> ok after 30000 -> exit(echo_timeout) end
    end).

%% gen_server:call throughput: Clients processes each call {Name, Target} with a small request.
call(Target, Name, Clients, WarmMs, MeasureMs) ->
    Server = {Name, Target},
    Req = payload(small_tuple),
    Req = gen_server:call(Server, Req, 10000),
    run(Clients, WarmMs, MeasureMs, fun() -> Req = gen_server:call(Server, Req, 30000) end).

run(Clients, WarmMs, MeasureMs, RoundTrip) ->
    Now = erlang:monotonic_time(microsecond),
    Start = Now + WarmMs * 1000,
    End = Start + MeasureMs * 1000,
    Parent = self(),
    Workers = [spawn_monitor(fun() -> Parent ! {done, self(), worker(RoundTrip, Start, End, 0)} end)
               || _ <- lists:seq(1, Clients)],
    Results = [collect(W) || W <- Workers],
    Count = lists:sum([C || {C, _} <- Results]),
    Last = lists:max([L || {_, L} <- Results]),
    {Count, max(1, Last - Start)}.

worker(RoundTrip, Start, End, Count) ->
    T0 = erlang:monotonic_time(microsecond),
    if
        T0 >= End -> {Count, T0};
        true ->
            RoundTrip(),
            worker(RoundTrip, Start, End, if T0 >= Start -> Count + 1; true -> Count end)
    end.

collect({Pid, Ref}) ->
    receive
        {done, Pid, Result} -> erlang:demonitor(Ref, [flush]), Result;
        {'DOWN', Ref, process, Pid, Reason} -> exit({bench_worker_died, Reason})
    end.

%% --- the BEAM anchors (run on the second BEAM node) ---------------------------------------------

start_echo() ->
    Pid = spawn(fun echo_loop/0),
    true = register(echo, Pid),
    ok.

echo_loop() ->
    receive
        {From, Payload} when is_pid(From) -> From ! Payload;
        _ -> ok
    end,
    echo_loop().

start_gen_server() ->
    {ok, _} = gen_server:start({local, bench_gs}, ?MODULE, [], []),
    ok.

init([]) -> {ok, nostate}.
handle_call(Req, _From, State) -> {reply, Req, State}.
handle_cast(_Req, State) -> {noreply, State}.
handle_info(_Msg, State) -> {noreply, State}.

%% The memory anchor: N processes idle in receive, as the ts node's spawned processes are.
spawn_idle(N) ->
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, N)],
    persistent_term:put(bench_idle, Pids),
    ok.

stop_idle() ->
    [P ! stop || P <- persistent_term:get(bench_idle, [])],
    persistent_term:erase(bench_idle),
    ok.

