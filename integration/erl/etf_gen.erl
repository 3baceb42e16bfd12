%% Random Erlang terms for the ETF codec round-trip test (integration/etf.test.ts).
%%
%% generate(Dir, N, Seed) makes N random terms covering every term type, keeps them in this node
%% (persistent_term) and writes Dir/gen.bin: for each term <<Len:32, Bytes/binary>> where Bytes is
%% term_to_binary(Term, Opts) with Opts varied (plain, compressed, minor_version 0/1).
%% check_roundtrip(Dir) reads Dir/ours.bin (the TypeScript re-encodings, same framing and order)
%% and compares binary_to_term(Ours) =:= Original for each.
%% check_expected(Dir) reads Dir/ts.bin: <<ELen:32, Expr/binary, BLen:32, Bytes/binary>> pairs, where
%% Expr is Erlang source text of the expected value and Bytes is a term encoded by TypeScript.
-module(etf_gen).
-export([generate/3, check_roundtrip/1, check_expected/1, coverage/0]).
-export([closure/1, closure2/2]).

-define(KEY, {?MODULE, terms}).

generate(Dir, N, Seed) ->
    _ = rand:seed(exsss, {Seed, Seed * 7 + 1, Seed * 13 + 5}),
    Holders0 = start_holders(),
    Holders = Holders0#{fixed => fixed(Holders0)},
    Terms = [term_for(I, Holders) || I <- lists:seq(1, N)],
    persistent_term:put(?KEY, Terms),
    Data = [frame(term_to_binary(T, encode_opts(I))) || {I, T} <- lists:zip(lists:seq(1, N), Terms)],
    ok = file:write_file(filename:join(Dir, "gen.bin"), Data),
    {generated, length(Terms)}.

frame(B) -> [<<(byte_size(B)):32>>, B].

encode_opts(I) when I rem 17 =:= 0 -> [compressed];
encode_opts(I) when I rem 29 =:= 0 -> [{compressed, 9}];
encode_opts(I) when I rem 23 =:= 0 -> [{minor_version, 0}];
encode_opts(I) when I rem 31 =:= 0 -> [{minor_version, 1}];
encode_opts(_) -> [].

check_roundtrip(Dir) ->
    Terms = persistent_term:get(?KEY),
    {ok, Bin} = file:read_file(filename:join(Dir, "ours.bin")),
    Ours = unframe(Bin, []),
    length(Ours) =:= length(Terms) orelse error({count_mismatch, length(Ours), length(Terms)}),
    Bad = [{I, T, safe_decode(B)}
           || {I, T, B} <- lists:zip3(lists:seq(1, length(Terms)), Terms, Ours),
              not same(T, B)],
    {roundtrip, length(Terms) - length(Bad), length(Bad), lists:sublist(Bad, 3)}.

same(T, B) ->
    try binary_to_term(B) of V -> V =:= T catch _:_ -> false end.

safe_decode(B) ->
    try binary_to_term(B) catch C:E -> {C, E, B} end.

check_expected(Dir) ->
    {ok, Bin} = file:read_file(filename:join(Dir, "ts.bin")),
    Pairs = pairs(unframe(Bin, [])),
    Results = [{Src, expected(Src), safe_decode(B)} || {Src, B} <- Pairs],
    Bad = [R || {_, E, G} = R <- Results, E =/= G],
    {expected, length(Results) - length(Bad), length(Bad), Bad}.

pairs([S, B | Rest]) -> [{S, B} | pairs(Rest)];
pairs([]) -> [].

expected(Src) ->
    {ok, Toks, _} = erl_scan:string(unicode:characters_to_list(Src) ++ "."),
    {ok, [Expr]} = erl_parse:parse_exprs(Toks),
    {value, V, _} = erl_eval:expr(Expr, erl_eval:new_bindings()),
    V.

unframe(<<Len:32, B:Len/binary, Rest/binary>>, Acc) -> unframe(Rest, [B | Acc]);
unframe(<<>>, Acc) -> lists:reverse(Acc).

%% How many of the generated terms contain each kind of term (printed by the test).
coverage() ->
    Terms = persistent_term:get(?KEY),
    Kinds = lists:foldl(fun(T, Acc) -> kinds(T, Acc, 0) end, #{}, Terms),
    lists:sort(maps:to_list(Kinds)).

kinds(_, Acc, D) when D > 50 -> Acc;
kinds(T, Acc, D) ->
    K = kind(T),
    Acc1 = maps:update_with(K, fun(C) -> C + 1 end, 1, Acc),
    lists:foldl(fun(C, A) -> kinds(C, A, D + 1) end, Acc1, children(T)).

kind(T) when is_atom(T) -> atom;
kind(T) when is_integer(T), T >= 0, T < 256 -> small_integer;
kind(T) when is_integer(T), T >= -(1 bsl 31), T < (1 bsl 31) -> integer;
kind(T) when is_integer(T), abs(T) >= (1 bsl 64) -> bignum_over_64_bits;
kind(T) when is_integer(T) -> bignum;
kind(T) when is_float(T) -> float;
kind(T) when is_binary(T), byte_size(T) > 65536 -> large_binary;
kind(T) when is_binary(T) -> binary;
kind(T) when is_bitstring(T) -> bitstring;
kind([]) -> nil;
kind(T) when is_list(T) ->
    case io_lib:printable_unicode_list(T) of true -> string; false -> list_kind(T) end;
kind(T) when is_tuple(T), tuple_size(T) > 255 -> large_tuple;
kind(T) when is_tuple(T) -> tuple;
kind(T) when is_map(T) -> map;
kind(T) when is_pid(T), node(T) =:= node() -> local_pid;
kind(T) when is_pid(T) -> external_pid;
kind(T) when is_port(T) -> port;
kind(T) when is_reference(T) -> reference;
kind(T) when is_function(T) ->
    case erlang:fun_info(T, type) of {type, external} -> export; _ -> closure end.

list_kind(L) ->
    try length(L) of _ -> list catch _:_ -> improper_list end.

children(T) when is_tuple(T) -> tuple_to_list(T);
children(T) when is_map(T) -> maps:keys(T) ++ maps:values(T);
children([_ | _] = L) -> list_parts(L, []);
children(F) when is_function(F) ->
    case erlang:fun_info(F, env) of {env, E} when is_list(E) -> E; _ -> [] end;
children(_) -> [].

list_parts([H | T], Acc) -> list_parts(T, [H | Acc]);
list_parts([], Acc) -> Acc;
list_parts(Tail, Acc) -> [Tail | Acc].

%% --- the generator ----------------------------------------------------------------------------

%% Processes and ports that live as long as the node, so pids and ports are real.
start_holders() ->
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 5)],
    Port = open_port({spawn, "cat"}, []),
    Ports = [Port | erlang:ports()],
    #{pids => [self() | Pids], ports => Ports}.

%% Every 50th term is one of the fixed edge cases; the rest are random.
term_for(I, H) ->
    Fixed = maps:get(fixed, H),
    case I rem 50 of
        0 -> lists:nth((I div 50) rem length(Fixed) + 1, Fixed);
        _ -> any(H, 4)
    end.

fixed(H) ->
    Closure = closure({captured, [1, 2.5, <<"bin">>]}),
    [1.0, -0.0, 0.0, 1.0e300, 5.0e-324, -1.5,
     1 bsl 64, -(1 bsl 64), (1 bsl 64) - 1, 1 bsl 53, (1 bsl 53) + 1, -(1 bsl 53) - 1, 1 bsl 1000,
     [1 | 2], [a, b | <<"c">>], <<1:3>>, <<255, 7:3>>, <<>>, "", [], {}, #{},
     #{{a, 1} => x, [1, 2] => y, #{k => v} => z, 1.0 => f, 1 => i, <<"b">> => b},
     list_to_tuple(lists:seq(1, 300)),
     binary:copy(<<"0123456789">>, 10000),
     lists:seq(1, 70000),
     lists:duplicate(70000, $a), lists:duplicate(65535, $q), lists:duplicate(65536, $q),
     rand:bytes(100 * 1024), [rand:bytes(1024) || _ <- lists:seq(1, 64)],
     [256, 1000, 70000],
     deep(1000), deep_tuple(3000),
     Closure, closure2(self(), make_ref()), eval_fun(), fun lists:map/2, fun erlang:'+'/2, fun no_such_mod:f/0,
     make_ref(), alias(), self(), hd(maps:get(ports, H)),
     list_to_atom(lists:duplicate(255, $x)), list_to_atom(lists:duplicate(255, 955)),
     'hello world', '', true, false, undefined,
     ext_pid(), ext_port(), ext_v4_port(), ext_ref(3), ext_ref(5), ext_old_ref()].

closure(X) -> fun() -> X end.

%% A shell-style fun: erl_eval's closure over its bindings and abstract code.
eval_fun() ->
    {ok, Toks, _} = erl_scan:string("fun(X) -> X + Y end."),
    {ok, [E]} = erl_parse:parse_exprs(Toks),
    {value, F, _} = erl_eval:expr(E, erl_eval:add_binding('Y', 5, erl_eval:new_bindings())),
    F.
closure2(A, B) -> fun(Y) -> {A, B, Y} end.

deep(0) -> [];
deep(N) -> [deep(N - 1)].

deep_tuple(0) -> leaf;
deep_tuple(N) -> {deep_tuple(N - 1)}.

%% Pids, ports and references of other nodes (their creations differ from ours).
ext_pid() ->
    binary_to_term(<<131, 88, 119, 9, "other@hst", (rnd(1 bsl 32)):32, (rnd(1 bsl 32)):32, (rnd(1 bsl 32)):32>>).
ext_port() ->
    binary_to_term(<<131, 89, 119, 9, "other@hst", (rnd(1 bsl 32)):32, (rnd(1 bsl 32)):32>>).
ext_v4_port() ->
    binary_to_term(<<131, 120, 119, 9, "other@hst", ((1 bsl 32) + rnd(1 bsl 40)):64, (rnd(1 bsl 32)):32>>).
ext_ref(W) ->
    Ids = << <<(rnd(1 bsl 32)):32>> || _ <- lists:seq(1, W) >>,
    binary_to_term(<<131, 90, W:16, 119, 9, "other@hst", (rnd(1 bsl 32)):32, Ids/binary>>).
ext_old_ref() ->
    binary_to_term(<<131, 114, 0, 3, 100, 0, 9, "other@hst", 2, 0:32, 1:32, 2:32>>).

rnd(N) -> rand:uniform(N) - 1.

pick(L) -> lists:nth(rand:uniform(length(L)), L).

any(H, 0) -> scalar(H);
any(H, D) ->
    case rand:uniform(10) of
        N when N =< 4 -> scalar(H);
        _ -> compound(H, D - 1)
    end.

scalar(H) ->
    case rand:uniform(14) of
        1 -> atom();
        2 -> integer();
        3 -> integer();
        4 -> float();
        5 -> binary();
        6 -> bitstring();
        7 -> string();
        8 -> pick(maps:get(pids, H) ++ [ext_pid()]);
        9 -> pick(maps:get(ports, H) ++ [ext_port(), ext_v4_port()]);
        10 -> pick([make_ref(), alias(), ext_ref(rand:uniform(5)), ext_old_ref()]);
        11 -> pick([fun lists:map/2, fun erlang:element/2, fun mod_that_is:not_loaded/3]);
        12 -> pick([true, false, ok, '', [], {}, #{}, <<>>]);
        13 -> pick([1.0, -0.0, 0.0, 2.0e20]);
        14 -> big_binary()
    end.

compound(H, D) ->
    case rand:uniform(9) of
        1 -> [any(H, D) || _ <- lists:seq(1, rand:uniform(6) - 1)];
        2 -> list_to_tuple([any(H, D) || _ <- lists:seq(1, rand:uniform(6) - 1)]);
        3 -> maps:from_list([{any(H, D), any(H, D)} || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        4 -> improper(H, D);
        5 -> closure(any(H, D));
        6 -> closure2(any(H, D), any(H, D));
        7 -> maps:from_list([{I, atom()} || I <- lists:seq(1, 33 + rand:uniform(10))]);
        8 -> case rand:uniform(10) of 1 -> large_tuple(H); _ -> {} end;
        9 -> nested(rand:uniform(60))
    end.

%% A list whose tail is not a list (when the picked tail is itself a list the result is proper).
improper(H, D) ->
    [any(H, D) || _ <- lists:seq(1, rand:uniform(4))] ++ pick([any(H, D), atom(), <<"t">>, 42, {t}, 1.5]).

large_tuple(H) -> list_to_tuple([any(H, 0) || _ <- lists:seq(1, 256 + rand:uniform(50))]).

nested(0) -> pick([leaf, 1, <<"x">>]);
nested(N) ->
    case rand:uniform(3) of
        1 -> [nested(N - 1)];
        2 -> {nested(N - 1), N};
        3 -> #{N => nested(N - 1)}
    end.

atom() ->
    case rand:uniform(5) of
        1 -> list_to_atom([$a + rnd(26) || _ <- lists:seq(1, rand:uniform(12))]);
        2 -> list_to_atom([rnd(256) || _ <- lists:seq(1, rnd(20))]);
        3 -> list_to_atom([pick([955, 8364, 128512, 1103, $z, 228]) || _ <- lists:seq(1, rand:uniform(30))]);
        4 -> list_to_atom([$l + rnd(5) || _ <- lists:seq(1, 200 + rnd(56))]);
        5 -> list_to_atom([pick([955, 8364, 128512]) || _ <- lists:seq(1, 100 + rnd(156))])
    end.

integer() ->
    case rand:uniform(7) of
        1 -> rnd(256);
        2 -> rnd(1 bsl 32) - (1 bsl 31);
        3 -> rnd(1 bsl 53) * pick([1, -1]);
        4 -> (rnd(1 bsl 64) + (1 bsl 53)) * pick([1, -1]);
        5 -> (rnd(1 bsl 200) + (1 bsl 64)) * pick([1, -1]);
        6 -> (1 bsl (64 + rnd(3000))) + rnd(1000);
        7 -> pick([0, -1, 255, 256, -(1 bsl 31), (1 bsl 31) - 1, 1 bsl 31, -(1 bsl 31) - 1,
                   (1 bsl 53) - 1, 1 bsl 53, (1 bsl 64) - 1, -(1 bsl 64) + 1])
    end.

float() ->
    case rand:uniform(4) of
        1 -> rand:uniform() * pick([1.0, -1.0, 1.0e10, 1.0e-10, 1.0e300, -1.0e-300]);
        2 -> float(rnd(1 bsl 40)) * pick([1.0, -1.0]);
        3 -> rand:normal();
        4 -> pick([1.0, -0.0, 0.0, 100.0, 1.0e15, 1.0e16, 1.0e300, 2.2250738585072014e-308])
    end.

binary() -> rand:bytes(rnd(201)).

big_binary() ->
    case rand:uniform(100) of
        1 -> rand:bytes(100 * 1024);
        _ -> rand:bytes(65 + rnd(400))
    end.

bitstring() ->
    Bits = rand:uniform(7),
    B = rand:bytes(rnd(100)),
    <<B/binary, (rnd(1 bsl Bits)):Bits>>.

string() ->
    case rand:uniform(3) of
        1 -> [rnd(256) || _ <- lists:seq(1, rand:uniform(40))];
        2 -> [$a + rnd(26) || _ <- lists:seq(1, rand:uniform(40))];
        3 -> [pick([955, 8364, 128512, $a, 0, 255, 256]) || _ <- lists:seq(1, rand:uniform(20))]
    end.
