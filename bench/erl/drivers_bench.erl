%% The Erlang side of bench/drivers.ts: the same loops against ts-cnode's pg_sync and the seed's
%% linked-in driver (seed_pg_sync), from the same client node.
-module(drivers_bench).
-export([throughput/5, timer_delay/4, baseline/1, select_loop/6]).

%% Clients processes, each with its own connection, run Query back to back for Millis ms.
%% -> {Selects, Micros, Errors}
throughput(Mod, ConnStr, Clients, Query, Millis) ->
    Self = self(),
    Pids = [spawn_link(fun() -> client(Self, Mod, ConnStr, Query, Millis) end)
            || _ <- lists:seq(1, Clients)],
    [receive {ready, P} -> ok end || P <- Pids],
    T0 = erlang:monotonic_time(microsecond),
    [P ! go || P <- Pids],
    Results = [receive {count, P, C, E} -> {C, E} end || P <- Pids],
    T1 = erlang:monotonic_time(microsecond),
    {lists:sum([C || {C, _} <- Results]), T1 - T0, lists:sum([E || {_, E} <- Results])}.

client(Parent, Mod, ConnStr, Query, Millis) ->
    {ok, Port} = Mod:connect(ConnStr),
    {ok, _} = Mod:select(Port, Query),
    Parent ! {ready, self()},
    receive go -> ok end,
    Deadline = erlang:monotonic_time(millisecond) + Millis,
    {C, E} = select_loop(Mod, Port, Query, Deadline, 0, 0),
    Mod:disconnect(Port),
    Parent ! {count, self(), C, E}.

%% Query through Mod on Port back to back until Deadline (monotonic ms), counting the selects answered
%% {ok, _} and the others (also the loop of drivers_prof). -> {C, E}
select_loop(Mod, Port, Query, Deadline, C, E) ->
    case erlang:monotonic_time(millisecond) >= Deadline of
        true -> {C, E};
        false ->
            case Mod:select(Port, Query) of
                {ok, _} -> select_loop(Mod, Port, Query, Deadline, C + 1, E);
                _ -> select_loop(Mod, Port, Query, Deadline, C, E + 1)
            end
    end.

%% While one process runs "select pg_sleep(0.2)" Rounds times, another sleeps 1 ms over and over and
%% records how late each wake-up is (microseconds beyond the 1 ms). With Pin, both are bound to
%% scheduler 1, as two processes sharing a scheduler would be. -> sorted list of delays
timer_delay(Mod, ConnStr, Rounds, Pin) ->
    Opts = case Pin of true -> [{scheduler, 1}]; false -> [] end,
    Self = self(),
    Sleeper = spawn_opt(fun() ->
                  {ok, Port} = Mod:connect(ConnStr),
                  Self ! {ready, self()},
                  receive go -> ok end,
                  [{ok, _} = Mod:select(Port, "select pg_sleep(0.2)") || _ <- lists:seq(1, Rounds)],
                  Mod:disconnect(Port),
                  Self ! {slept, self()}
              end, Opts),
    receive {ready, Sleeper} -> ok end,
    Ticker = spawn_opt(fun() -> receive go -> ok end, Self ! {delays, self(), tick([])} end, Opts),
    Ticker ! go,
    Sleeper ! go,
    receive {slept, Sleeper} -> ok end,
    Ticker ! stop,
    receive {delays, Ticker, Delays} -> lists:sort(Delays) end.

%% A wait cut short by stop still counts when it was already late: a timer that never fired while the
%% queries ran is as late as the whole run.
tick(Acc) ->
    T0 = erlang:monotonic_time(microsecond),
    receive
        stop ->
            case erlang:monotonic_time(microsecond) - T0 - 1000 of
                Late when Late > 0 -> [Late | Acc];
                _ -> Acc
            end
    after 1 ->
        tick([erlang:monotonic_time(microsecond) - T0 - 1000 | Acc])
    end.

%% The same ticker with nothing else running, for Millis ms: the lateness every 1 ms timer has.
baseline(Millis) ->
    Self = self(),
    Ticker = spawn(fun() -> receive go -> ok end, Self ! {delays, self(), tick([])} end),
    Ticker ! go,
    timer:sleep(Millis),
    Ticker ! stop,
    receive {delays, Ticker, Delays} -> lists:sort(Delays) end.
