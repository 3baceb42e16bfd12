%% The Erlang side of the reliability tests: a chatter that keeps pinging a TypeScript node and exchanging
%% messages with one of its echo processes (it must keep getting answers while others attack the node),
%% and a load generator: N senders, each with a window of messages in flight to its own TypeScript echo
%% process, checking that every echo comes back and in the order sent.
%%
%% The TypeScript echo processes answer a message {FromPid, ...} with {echo, Message}.
-module(ts_peer).

-export([start_chatter/3, chatter_stats/1, stop_chatter/1]).
-export([load/5, slow_reader/2, slow_reader_result/1, slow_reader_wait/3]).
-export([pg_load/3, pg_load_report/1, workers/3]).

%% --- chatter ------------------------------------------------------------------------------------

start_chatter(TsNode, Echo, IntervalMs) ->
    Parent = self(),
    Pid = spawn(fun() ->
        erlang:monitor_node(TsNode, true),
        Parent ! {self(), started},
        chat(TsNode, Echo, IntervalMs, #{ok => 0, pang => 0, lost => 0, nodedown => 0, seq => 0})
    end),
    receive {Pid, started} -> Pid after 5000 -> error(chatter_start) end.

chat(TsNode, Echo, IntervalMs, S0) ->
    receive
        {nodedown, TsNode} ->
            erlang:monitor_node(TsNode, true),
            chat(TsNode, Echo, IntervalMs, bump(nodedown, S0));
        {stats, From} ->
            From ! {self(), stats, S0},
            chat(TsNode, Echo, IntervalMs, S0);
        {stop, From} ->
            From ! {self(), stats, S0}
    after IntervalMs ->
        S1 = case net_adm:ping(TsNode) of
                 pong -> bump(ok, S0);
                 pang -> bump(pang, S0)
             end,
        Seq = maps:get(seq, S1) + 1,
        {Echo, TsNode} ! {self(), chat, Seq},
        S2 = receive
                 {echo, {_, chat, Seq}} -> bump(ok, S1)
             after 5000 -> bump(lost, S1)
             end,
        chat(TsNode, Echo, IntervalMs, S2#{seq := Seq})
    end.

bump(K, S) -> maps:update_with(K, fun(V) -> V + 1 end, S).

chatter_stats(Pid) ->
    Pid ! {stats, self()},
    receive {Pid, stats, S} -> S after 15000 -> timeout end.

stop_chatter(Pid) ->
    Pid ! {stop, self()},
    receive {Pid, stats, S} -> S after 15000 -> timeout end.

%% --- load ---------------------------------------------------------------------------------------

%% Senders 1..N each send PerSender messages {self(), I, Seq} to {EchoPrefix ++ "_" ++ I, TsNode} with at
%% most Window unanswered, and check that the echoes come back in order. Returns
%% #{sent, received, out_of_order, missing, ms}.
load(TsNode, EchoPrefix, N, PerSender, Window) ->
    Parent = self(),
    T0 = erlang:monotonic_time(millisecond),
    Pids = [spawn_link(fun() -> Parent ! {self(), done, sender(TsNode, echo_name(EchoPrefix, I), I, PerSender, Window)} end)
            || I <- lists:seq(1, N)],
    Results = [receive {P, done, R} -> R after 600000 -> {0, 0, 0, PerSender} end || P <- Pids],
    T1 = erlang:monotonic_time(millisecond),
    lists:foldl(
      fun({S, R, O, M}, Acc) ->
              Acc#{sent := maps:get(sent, Acc) + S, received := maps:get(received, Acc) + R,
                   out_of_order := maps:get(out_of_order, Acc) + O, missing := maps:get(missing, Acc) + M}
      end,
      #{sent => 0, received => 0, out_of_order => 0, missing => 0, ms => T1 - T0}, Results).

echo_name(Prefix, I) ->
    list_to_atom(lists:flatten(io_lib:format("~s_~2..0B", [Prefix, I]))).

sender(TsNode, Echo, I, Total, Window) ->
    Dest = {Echo, TsNode},
    First = min(Window, Total),
    [Dest ! {self(), I, Seq} || Seq <- lists:seq(1, First)],
    collect(Dest, I, Total, First, 1, 0, 0).

%% Next: the next Seq to send; Expect: the Seq the next echo must carry.
collect(_Dest, _I, Total, Sent, Expect, Received, OutOfOrder) when Expect > Total ->
    {Sent, Received, OutOfOrder, Total - Received};
collect(Dest, I, Total, Sent, Expect, Received, OutOfOrder) ->
    receive
        {echo, {_, I, Seq}} ->
            O = case Seq of Expect -> OutOfOrder; _ -> OutOfOrder + 1 end,
            Sent1 = case Sent < Total of
                        true -> Dest ! {self(), I, Sent + 1}, Sent + 1;
                        false -> Sent
                    end,
            collect(Dest, I, Total, Sent1, Seq + 1, Received + 1, O)
    after 30000 ->
        {Sent, Received, OutOfOrder, Total - Received}
    end.

%% --- a slow reader ------------------------------------------------------------------------------

%% A registered process that takes one message every DelayMs, remembering the order; the result is
%% {Count, InOrder} where messages are {seq, N} and InOrder says N went 1, 2, 3...
slow_reader(Name, DelayMs) ->
    Pid = spawn(fun() -> slow(DelayMs, 0, true) end),
    register(Name, Pid),
    Pid.

slow(DelayMs, N, InOrder) ->
    receive
        {result, From} ->
            From ! {self(), {N, InOrder}},
            slow(DelayMs, N, InOrder);
        {seq, S} ->
            timer:sleep(DelayMs),
            slow(DelayMs, N + 1, InOrder andalso S =:= N + 1);
        {seq, S, _Payload} ->
            timer:sleep(DelayMs),
            slow(DelayMs, N + 1, InOrder andalso S =:= N + 1)
    end.

slow_reader_result(Pid) ->
    Pid ! {result, self()},
    receive {Pid, R} -> R after 30000 -> timeout end.

%% The result once Expect messages were taken (messages still on the wire are not in the mailbox yet),
%% or what it is after TimeoutMs.
slow_reader_wait(Pid, Expect, TimeoutMs) ->
    case slow_reader_result(Pid) of
        {N, _} = R when N >= Expect; TimeoutMs =< 0 -> R;
        _ -> timer:sleep(50), slow_reader_wait(Pid, Expect, TimeoutMs - 50)
    end.

%% --- Postgres under load --------------------------------------------------------------------------

%% N workers, each with its own pg_sync session on Url, selecting in a loop. A select that fails is counted
%% (with its text); the worker then disconnects and connects again, counting failed and successful
%% connects. pg_load_report/1 collects #{ok, error, connects, connect_errors, ok_after_error, errors}.
pg_load(Url, N, Query) ->
    [spawn(fun() -> pg_worker(Url, Query) end) || _ <- lists:seq(1, N)].

pg_worker(Url, Query) ->
    pg_worker(Url, Query, none, #{ok => 0, error => 0, connects => 0, connect_errors => 0, ok_after_error => 0, errors => []}).

pg_worker(Url, Query, Port, S) ->
    receive
        {report, From} ->
            _ = case Port of none -> ok; _ -> pg_sync:disconnect(Port) end,
            From ! {self(), S}
    after 0 ->
        case Port of
            none ->
                case pg_sync:connect(Url) of
                    {ok, P} -> pg_worker(Url, Query, P, bump(connects, S));
                    {error, _} -> timer:sleep(100), pg_worker(Url, Query, none, bump(connect_errors, S))
                end;
            _ ->
                case pg_sync:select(Port, Query) of
                    {ok, _} ->
                        S1 = case maps:get(error, S) > 0 of true -> bump(ok_after_error, S); false -> S end,
                        pg_worker(Url, Query, Port, bump(ok, S1));
                    {error, Msg} ->
                        _ = pg_sync:disconnect(Port),
                        Errors = lists:sublist([Msg | maps:get(errors, S)], 5),
                        pg_worker(Url, Query, none, (bump(error, S))#{errors := Errors})
                end
        end
    end.

pg_load_report(Pids) ->
    [P ! {report, self()} || P <- Pids],
    [receive {P, S} -> S after 60000 -> timeout end || P <- Pids].

%% N processes that each announce themselves to Watcher ({watch, Pid}) and then run Fun() forever.
workers(N, Watcher, Fun) ->
    [spawn(fun() -> Watcher ! {watch, self()}, Fun() end) || _ <- lists:seq(1, N)].
