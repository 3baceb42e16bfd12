%% The BEAM's own binary_to_term/1 and term_to_binary/1 on the ETF bench corpus (bench/etf.ts).
%% run(Dir, Names, TargetMicros): for each Name reads Dir/Name.in (any encoding of the term), writes
%% Dir/Name.erl.bin (term_to_binary of it: the bytes every decoder in the bench decodes) and prints
%%   RESULT Name DecodeOpsPerSec EncodeOpsPerSec
%% each the best of three rounds over about TargetMicros of work in all, after a warm-up.
-module(etf_bench).
-export([run/3]).

run(Dir, Names, Target) ->
    lists:foreach(fun(Name) -> shape(Dir, Name, Target) end, Names),
    io:format("DONE~n").

shape(Dir, Name, Target) ->
    {ok, In} = file:read_file(filename:join(Dir, Name ++ ".in")),
    Term = binary_to_term(In),
    Bin = term_to_binary(Term),
    ok = file:write_file(filename:join(Dir, Name ++ ".erl.bin"), Bin),
    Dec = ops(fun(N) -> decode_loop(Bin, N) end, Target),
    Enc = ops(fun(N) -> encode_loop(Term, N) end, Target),
    io:format("RESULT ~s ~.3f ~.3f~n", [Name, Dec, Enc]).

%% Grow N until a run takes a tenth of a round, then the best of three timed rounds
%% (the best, because other load on the machine only ever slows a round down).
ops(F, Target) ->
    put(sink, F(10)),
    Round = Target div 3,
    N = calibrate(F, 1, Round div 10),
    lists:max([round_ops(F, N) || _ <- [1, 2, 3]]).

round_ops(F, N) ->
    garbage_collect(),
    {Micros, R} = timer:tc(fun() -> F(N) end),
    put(sink, R),
    N * 1.0e6 / max(Micros, 1).

calibrate(F, N, Goal) ->
    {T, R} = timer:tc(fun() -> F(N) end),
    put(sink, R),
    if
        T >= Goal -> max(1, round(N * 10 * Goal / max(T, 1)));
        true -> calibrate(F, N * 4, Goal)
    end.

%% Each result feeds an accumulator the caller keeps, so the compiler cannot drop the calls;
%% the per-iteration extra work is a type test or a byte_size.
decode_loop(B, N) -> decode_loop(B, N, 0).
decode_loop(_, 0, Acc) -> Acc;
decode_loop(B, N, Acc) ->
    T = binary_to_term(B),
    decode_loop(B, N - 1, if is_tuple(T) -> Acc + 1; true -> Acc + 2 end).

encode_loop(T, N) -> encode_loop(T, N, 0).
encode_loop(_, 0, Acc) -> Acc;
encode_loop(T, N, Acc) ->
    B = term_to_binary(T),
    encode_loop(T, N - 1, Acc bxor byte_size(B)).
