%% The Erlang side of the reliability tests: a chatter that keeps pinging a TypeScript node and exchanging
%% messages with one of its echo processes (it must keep getting answers while others attack the node),
%% and a load generator: N senders, each with a window of messages in flight to its own TypeScript echo
%% process, checking that every echo comes back and in the order sent.
%%
%% The TypeScript echo processes answer a message {FromPid, ...} with {echo, Message}.
-module(ts_peer).

-export([start_chatter/3, chatter_stats/1, stop_chatter/1]).
-export([load/5, slow_reader/2, slow_reader_result/1]).

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
            slow(DelayMs, N + 1, InOrder andalso S =:= N + 1)
    end.

slow_reader_result(Pid) ->
    Pid ! {result, self()},
    receive {Pid, R} -> R after 30000 -> timeout end.
