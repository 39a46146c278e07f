"""Round 7c's danger families and look-alike exclusions (docs/CHANNELS.md, round 7c), on new sentences.

Every sentence here is written for this test, in no data file: a family is a way people say a danger (a verb, a body
sign, a scene + person, a substance, an amount), so a new sentence of the family must be critical with its line first;
a look-alike family (a mistaken belief, a check that found nothing, fiction or a joke, a device fault, an animal or an
object, a question about prevention) must not be.
"""
from __future__ import annotations

import unicodedata

import pytest

from alerts.channels.classifier import SEED_FILE, ReportClassifier, load_examples
from alerts.channels.evaluate import demo_catalog
from alerts.channels.lexicon import default_lexicon


@pytest.fixture(scope="module")
def seed_clf():
    return ReportClassifier(demo_catalog()).fit(load_examples(SEED_FILE))


@pytest.mark.parametrize("text, line, family", [
    ("那堆木料烧得越来越猛", "119", "fire_family"),                                # how big it burns
    ("饭馆后厨油烟机那里的火一路烧到了屋顶", "119", "fire_family"),                  # spreading, next to a fume hood
    ("夜市摊位的气瓶在漏，旁边就是烧烤炉", "119", "gas_family"),                          # a cylinder leaking, at a barbecue
    ("隔壁厂房咣的一下，墙都塌了", "119", "explosion_family"),                      # a bang + what it did
    ("楼道里的电动车电瓶爆了", "119", "explosion_family"),                          # a thing that bursts
    ("爷爷出气越来越弱了", "120", "not_breathing_family"),               # breathing getting weak
    ("他碰了一下漏电的铁门，整个人弹开倒了", "120", "not_breathing_family"),         # an electric shock
    ("我老伴说心窝那块疼得直冒汗", "120", "chest_pain_family"),                       # chest pain in other words
    ("师傅的手被铁皮划了，一直往地上滴红的", "120", "bleeding_family"),               # blood said as its colour
    ("小孙女把樟脑丸当糖咽下去了", "120", "poisoning_family"),                          # a household substance swallowed
    ("她在群里发了一段话跟大家告别，现在电话打不通", "120", "poisoning_family"),        # a farewell
    ("两个人吵着吵着，一个抄起板砖就冲上去", "110", "weapon_family"),                 # an object grabbed as a weapon
    ("三岁的孩子爬到阳台外面的空调外机上了", "119", "trapped_family"),               # a child outside at a height
    ("搅拌站的工人胳膊绞进了传送带", "119", "trapped_family"),                       # caught in a machine
    ("表弟下水游泳半天没浮上来", "120", "in_water_family"),                          # went under, not up again
])
def test_a_new_sentence_of_each_family_is_critical_with_its_line(seed_clf, text, line, family):
    s = seed_clf.suggest(text)
    assert s.urgency == "critical" and s.handover == line, (s.urgency, s.handovers)
    assert family in {d["sign"] for d in s.dangers}, s.dangers


@pytest.mark.parametrize("text, standard", [
    ("楼下 bao zha 了 快来", "爆炸"),            # pinyin typed without an input method / voice-to-text
    ("师傅 chu dian 了", "触电"),
    ("佢食咗成板安眠药", "吃了一整板安眠药"),    # Cantonese 食咗 (ate), 成板 (a whole strip)
    ("阿爷话心口翳住", "心口闷住"),              # Cantonese 翳 (stuffy) in the chest
])
def test_pinyin_and_cantonese_danger_words_are_read_in_their_standard_form(seed_clf, text, standard):
    assert standard in default_lexicon().normalise(text)
    assert seed_clf.suggest(text).urgency == "critical"


@pytest.mark.parametrize("text", [
    "刚才以为楼道里着火了，结果是邻居在熏腊肉",                      # a mistaken belief
    "昨晚闻到点煤气味，燃气公司来测了说一切正常",                    # checked, nothing found
    "电影里那个人被困在电梯里，我想知道真遇到了该怎么办",             # fiction
    "我开玩笑的，刚才说有人晕倒是逗孩子",                            # a joke
    "家里的烟雾报警器老是半夜叫，应该是电池没电了",                  # a device fault
    "下水道一股臭鸡蛋味，师傅说是化粪池该抽了",                      # explained by someone who looked
    "火盆里的纸烧着了，火盆边有人看着",                              # a ritual fire, watched
    "狗狗掉进小区水池里了，麻烦物业来捞一下",                        # an animal, not a person
    "五金店门口摆着一排菜刀在卖",                                    # an object on sale
    "卫生间管子漏水，滴到楼下邻居家了",                              # water, not gas, from a pipe
    "学校想给孩子们讲防溺水知识，社区有宣传册吗",                    # a question about prevention
    "我父亲心梗后在家康复，想申请一张护理床",                        # a past illness, an application
    "请问社区有没有急救培训，想学学怎么做人工呼吸",                    # a question about training
    "工地电焊的火花溅到地上，想问有没有审批",                        # welding sparks
    "村口砖厂的烟囱天天冒黑烟",                                      # a chimney's smoke (冒黑烟 now qualified)
])
def test_look_alikes_of_round_7c_are_not_critical(seed_clf, text):
    s = seed_clf.suggest(text)
    assert s.urgency != "critical", (s.dangers, s.urgency_reasons)


def test_an_exclusion_does_not_clear_a_danger_it_does_not_describe(seed_clf):
    """The look-alike patterns are narrow: a lamp that went out is no fire put out, a pet in the report does not
    stop a person in the water, and a question about a lift does not clear a child at a window."""
    for text, line in (("车库里进水了，灯已经灭了，有两个人还在下面没上来", "119"),
                       ("遛狗的时候看见有人掉进河里了", "120"),
                       ("我想问下电梯维修的事，哎对面楼有个小孩半个身子探出窗外了", "119")):
        s = seed_clf.suggest(text)
        assert s.urgency == "critical" and s.handovers[0]["line"] == line, (text, s.dangers)
    lex = default_lexicon()
    assert not any(h.clears for h in lex.hits(unicodedata.normalize("NFKC", "电影院着火了，浓烟很大")))


# Round 8: families from the leave-one-file-out misses of the emergency development sets (docs/CHANNELS.md, round 8),
# each on sentences written for this test.
@pytest.mark.parametrize("text, line, family", [
    ("我哥喝多了倒在沙发上，怎么弄都弄不醒", "120", "not_breathing_r8"),                 # cannot be woken, other verbs
    ("奶奶坐在椅子上睡着似的，摇了半天也不醒", "120", "not_breathing_r8"),
    ("叫了他好几声都不怎么应，眼神发直", "120", "not_breathing_r8"),
    ("老公陪客户喝完酒回来，手脚冰凉冰凉的，在地上躺着", "120", "not_breathing_r8"),   # drunk and cold
    ("小伙子骑车摔了，后脑着地，现在一直吐", "120", "fall_head_r8"),                    # head first, vomiting
    ("工人从架子上跌下来，两条腿没知觉了", "120", "fall_head_r8"),                      # no feeling in the legs
    ("爷爷在卫生间滑倒了，起来以后说不出话，左手一抽一抽的", "120", "fall_head_r8"),
    ("楼上阿婆摔倒了爬不起来，家里就她一个，门还反锁着", "120", "fall_head_r8"),       # fallen and alone
    ("公交上一个醉汉掏出把折叠刀乱晃", "110", "weapon_r8"),                             # weapons in other words
    ("烧烤摊有人拎根钢管见人就砸", "110", "weapon_r8"),
    ("两个男的把一个小姑娘硬往白色轿车里塞", "110", "abduction_r8"),                     # dragged into a car
    ("商场里有个孩子被陌生男人抱走了", "110", "abduction_r8"),                           # a child carried off
    ("我哋大厦后楼梯烧紧，啲住户落唔到楼", "119", "fire_r8"),                            # Cantonese: burning now
    ("对面山头一大片起烟了，风往村子这边刮", "119", "fire_r8"),                          # a hillside going up
    ("车在涵洞积水里熄火了，水到车窗了，司机还在车里", "119", "water_trap_r8"),         # trapped by flood water
    ("桥上护栏断了，一个骑电动车的摔下去了，下面就是河", "120", "in_water_r8"),          # fell, water below
    ("老厂房的墙在往下掉砖，里面还住着十几个工人", "119", "collapse_r8"),                 # collapsing, people inside
    ("独居老大爷家暖气停了，冻得直发抖，话都说不清了", "120", "cold_r8"),                 # hypothermia
    ("演唱会出口人太多，有个女孩被踩在地上了", "120", "crush_r8"),                       # a crush, someone down
    ("婆婆把燃气灶旋钮拧开了却没点火，厨房一股刺鼻的味道", "119", "gas_r8"),             # a burner on, unlit
])
def test_a_new_sentence_of_each_round_8_family_is_critical_with_its_line(seed_clf, text, line, family):
    s = seed_clf.suggest(text)
    assert s.urgency == "critical" and s.handover == line, (s.urgency, s.handovers, s.dangers)
    assert family in {d["sign"] for d in s.dangers}, s.dangers


@pytest.mark.parametrize("text", [
    "锅里的油刚才着了，我用湿毛巾盖灭了，现在没火了，就是满屋子味道",          # a pan fire already put out
    "食堂的油锅起了火苗，火已经扑灭了，没人受伤，就是还有点焦味",
    "社区在搞消防培训，有个志愿者扮演昏迷的伤员，别当真",                        # a casualty acted in a drill
    "操场上那是演习，有人装作溺水的，老师都在旁边",
    "窨井里冒白烟，物业说是热力管道的蒸汽，不是着火",                            # a heating main's steam
    "巷子里那盏路灯一闪一闪跟抽风一样",                                          # a flickering lamp
    "地下通道的灯全灭了，走进去突然看不清路",                                    # a dark passage
    "小区门口自来水管崩开了，水柱冲得老高",                                      # a burst water main
    "地铁里人太多，我的脚被踩了一下",                                            # stepped on in a crowd
    "超市里有人差点被挤倒，排队的人太多了",
    "楼下五金店在卖弹簧刀，这合法吗",                                            # a weapon on sale
    "搬家师傅往货车上拽沙发，挡了半条路",                                         # things dragged into a van
])
def test_look_alikes_of_round_8_are_not_critical(seed_clf, text):
    s = seed_clf.suggest(text)
    assert s.urgency != "critical", (s.dangers, s.urgency_reasons)


def test_a_put_out_fire_rules_out_only_the_fire(seed_clf):
    """“火已经灭了” clears the fire, not a gas smell in the same report, nor a person hurt by it."""
    for text, line, kept in (("锅里的火已经扑灭了，就是还有点焦味，可燃气管那里煤气味很浓", "119", "gas"),
                             ("锅里的火已经盖灭了，现在没火了，可我妈被烫着以后叫不醒", "120", "not_breathing")):
        s = seed_clf.suggest(text)
        signs = {d["sign"] for d in s.dangers}
        assert s.urgency == "critical" and s.handovers[0]["line"] == line, (text, s.dangers)
        assert kept in signs and "fire" not in signs, signs


@pytest.mark.parametrize("text, line, family", [
    ("巷子口那个草垛着了，风一吹火星子往房子那边飘", "119", "fire_r10"),                # a burning object + bare 着了
    ("阳台上的被子着了，家里没大人", "119", "fire_r10"),
    ("出租屋窗缝里一直冒黑乎乎的东西，敲门没人开", "119", "fire_r10"),                  # black stuff pouring out
    ("江边钓鱼的大叔让大浪卷下去了", "120", "in_water_r10"),                            # swept away by a wave
    ("小孩在河滩玩，被河水冲跑了", "120", "in_water_r10"),                              # … or a current
    ("我爸吃了山上捡的毒蘑菇，一直说看见墙上有小人", "120", "poisoning_r10"),          # a mushroom, hallucinations
    ("公园那根路灯杆漏电，有个小孩摸了一下被电得直哭", "119", "electric_r10"),        # a live pole
    ("楼下大爷倒在花坛边，喊他一点反应也没有", "120", "unresponsive_r10"),             # lying, no reaction at all
])
def test_a_new_sentence_of_each_round_10_family_is_critical_with_its_line(seed_clf, text, line, family):
    s = seed_clf.suggest(text)
    assert s.urgency == "critical" and s.handover == line, (s.urgency, s.handovers, s.dangers)
    assert family in {d["sign"] for d in s.dangers}, s.dangers


@pytest.mark.parametrize("text", [
    "楼下饭店的柴油发电机天天开，排气管冲着窗户喷黑烟",                              # an exhaust's black smoke
    "每天晚上都有股烧焦的味道飘进来，应该是哪个厂在烧东西",                          # a smell that comes back
    "早市的炸油条摊子把液化气罐直接摆在人行道上",                                    # a stall's gas cylinder
    "给物业反映过三次了，一点反应都没有，楼道灯还是坏的",                            # "no reaction" from an office
])
def test_look_alikes_of_round_10_are_not_critical(seed_clf, text):
    s = seed_clf.suggest(text)
    assert s.urgency != "critical", (s.dangers, s.urgency_reasons)


@pytest.mark.parametrize("text, line, family", [
    ("出租车司机靠在座椅上，我们拍车窗喊了半天都不动", "120", "unresponsive_r11"),      # slumped, knocking does not move him
    ("涵洞里水漫上来了，一个大姐爬到车顶上喊人", "119", "car_roof_r11"),                # on a car roof in flood water
    ("两个人在菜场吵架，卖肉的把刀拿出来对着人比划", "110", "knife_drawn_r11"),        # a knife drawn and waved
])
def test_a_new_sentence_of_each_round_11_family_is_critical_with_its_line(seed_clf, text, line, family):
    s = seed_clf.suggest(text)
    assert s.urgency == "critical" and s.handover == line, (s.urgency, s.handovers, s.dangers)
    assert family in {d["sign"] for d in s.dangers}, s.dangers


@pytest.mark.parametrize("text", [
    "我爷爷去年脑梗过一次，现在恢复得还行，想问问社区能不能申请助餐",          # a past illness, a request for care
    "送快递的小伙子说有点中暑，喝了点水歇了会儿说好多了",                        # heat that has passed
    "加班加到累晕了，老板还不发工资",                                            # figurative
    "电瓶车胎被扎漏气了，门口一地钉子",                                          # a tyre, not gas
    "卡车一过尘土飞扬，跟冒烟似的",                                              # a simile
    "厨房墙上那块黑印子是以前的租户留下的，想问要不要紧",                        # a fire long past
    "粥煮糊了，火关了窗也开了，现在没事了",                                      # a pot already off
    "液化气罐用完了，县城哪里能买到正规的",                                      # a gas question
    "网吧里那几个小孩打游戏一直喊救命救命，吵死了",                              # 救命 in a game
    "有只小猫卡在下水道口出不来，一直叫",                                        # an animal stuck
    "商场门口有人拿着cos道具枪拍照",                                              # a prop gun
    "孩子的球掉进小区水池里了，够不着",                                          # an object in the water
])
def test_look_alikes_of_round_11_are_not_critical(seed_clf, text):
    s = seed_clf.suggest(text)
    assert s.urgency != "critical", (s.dangers, s.urgency_reasons)


def test_a_past_illness_with_a_present_sign_stays_critical(seed_clf):
    """``not_an_event_past_illness`` clears only an illness that is over: a present sign keeps the report critical."""
    s = seed_clf.suggest("我爸去年中风过，刚才突然又说不出话了，嘴也歪了，想问怎么办")
    assert s.urgency == "critical" and s.handover == "120", (s.dangers, s.urgency_reasons)


@pytest.mark.parametrize("text, line, family", [
    ("我爸在果园里被蛇咬了，小腿一下子肿起来了", "120", "poisoning"),                   # a snake bite
    ("小区地库进水了，水都淹到他胸口了", "120", "in_water_family"),                      # water at a person's chest
    ("车库淹了，我妈还在车里，电话里说门推不动", "119", "trapped_family"),              # a relative still in the car
    ("桥洞下积水，有个司机在车里打不开门，水还在涨", "119", "trapped_family"),          # cannot open the door
    ("楼下烧烤的炭火把遮阳棚给引着了", "119", "fire"),                                  # set alight
])
def test_a_new_sentence_of_each_round_13_phrasing_is_critical_with_its_line(seed_clf, text, line, family):
    s = seed_clf.suggest(text)
    assert s.urgency == "critical" and line in {h["line"] for h in s.handovers}, (s.urgency, s.handovers, s.dangers)
    assert family in {d["sign"] for d in s.dangers}, s.dangers


@pytest.mark.parametrize("text", [
    "商店门口喇叭循环喊了一整天，我头都要炸了",                              # figurative
    "单元楼道的声控灯坏了，拍手跺脚都没反应",                                # a sound-activated lamp
    "隔壁院子天天熏腊肉，烟往我家窗户里灌",                                  # cooking smoke
    "有人在绿地上拿砖头垒了个鸡窝",                                          # building, not a weapon
    "公园长椅被人用小刀刻了名字",                                            # carving, not a weapon
    "家里的灶打不着，是不是没气了",                                          # a stove, not a person
    "上周我们楼有户人家着过火，想问问线路有没有隐患",                        # a fire in the past tense
    "油锅冒火被我拿锅盖扣灭了，现在没事了",                                  # already out
    "楼下通道堆满了杂物，真要有个着火什么的消防车都进不来",                  # a hypothetical fire
    "外卖小哥连人带车翻倒在路口，腿擦破了坐在地上",                          # a fall, not trapped
])
def test_look_alikes_of_round_13_are_not_critical(seed_clf, text):
    s = seed_clf.suggest(text)
    assert s.urgency != "critical", (s.dangers, s.urgency_reasons)


@pytest.mark.parametrize("text, line, family", [
    ("后山的土坡塌了，压住了一个人", "119", "collapse_r14"),                            # someone under what fell
    ("河里的竹筏翻了，有个小孩到现在没冒头", "120", "not_surfacing_r14"),                  # gone under, not up
    ("海边礁石上有三个学生回不来，水越来越高", "119", "stranded_r14"),                    # cut off by the tide
    ("仓库那边嘭的一声，还有人在里面没出来", "119", "explosion_r14"),                      # a bang, someone inside
    ("烧烤摊的煤气软管裂了一直在漏，我闻着有点头晕", "119", "gas_hose_r14"),               # a cracked hose at a stall
    ("他用瓶子敲了那人的头，满地玻璃渣", "110", "bottle_r14"),                            # a bottle on a head
    ("商场电梯门开了，轿厢不在，有个老人一脚踏空掉下去了", "119", "shaft_r14"),           # an empty lift shaft
    ("一楼的张奶奶瘫痪在床，水已经漫到床脚了", "119", "water_rising_r14"),               # water reaching the bedridden
])
def test_a_new_sentence_of_each_round_14_family_is_critical_with_its_line(seed_clf, text, line, family):
    s = seed_clf.suggest(text)
    assert s.urgency == "critical" and line in {h["line"] for h in s.handovers}, (s.urgency, s.handovers, s.dangers)
    assert family in {d["sign"] for d in s.dangers}, s.dangers


@pytest.mark.parametrize("text, standard", [
    ("阿婆瞓喺地下唔郁", "躺在地上不动"),        # Cantonese: lying on the floor, not moving
    ("个细路食糖鲠亲，块面紫晒", "噎住"),        # choked on a sweet, face purple
    ("有个工人畀泥埋咗半身", "被泥埋了"),        # 畀 (by) earth, buried
    ("仲有人喺入面", "还有人在里面"),            # someone still inside
])
def test_round_14_cantonese_danger_words_are_read_in_their_standard_form(seed_clf, text, standard):
    assert standard in default_lexicon().normalise(text)
    assert seed_clf.suggest(text).urgency == "critical"


@pytest.mark.parametrize("text", [
    "去年楼下那辆三轮车烧过一次，现在墙还黑着，能来刷一下吗",          # burnt once, long ago
    "烟感一直叫，其实是我煎鱼的油烟",                                  # an alarm set off by cooking
    "有人挨家挨户推销烟雾报警器，说不装会出事",                        # a salesman's alarm
    "社区下周组织学海姆立克急救法，在哪报名",                          # learning first aid
    "孩子们在楼下拿水枪互相滋，弄得一楼窗户全湿了",                    # a water gun
    "我妈前几天犯心脏病住了院，现在出院了，建议社区配个除颤仪",        # a past illness, a suggestion
    "路口堵死了，在车里被困了四十分钟",                                # stuck in traffic
    "小区门口卖刀具的摊子占了半条人行道",                              # knives on sale
    "朋友圈传我们小区有人拿刀抢劫，是不是谣言",                        # asking about a rumour
    "房东把门锁换了，我的东西都还在里面",                              # belongings inside, not a person
    "后巷那盏灯的灯罩掉了一半，吊在半空晃",                            # a lamp shade hanging
    "台风过后积水到膝头，车都开不过去",                                # Cantonese 膝头 is a knee
    "隔壁在看恐怖片，一直有人喊救命，声音太大了",                      # a film
    "晒咸鱼的味道整条街都闻到",                                        # salted fish, not gas
    "煮饭烧燶咗，成屋都闻到燶味",                                      # Cantonese 燶: burnt rice
])
def test_look_alikes_of_round_14_are_not_critical(seed_clf, text):
    s = seed_clf.suggest(text)
    assert s.urgency != "critical", (s.dangers, s.urgency_reasons)


@pytest.mark.parametrize("text, line, family", [
    ("仓库里呼的一下就窜起来了，人都往外跑", "119", "fire_r15"),                  # flames by their sound
    ("对门的门缝底下钻出来好多烟，屋里有股烧塑料的味道", "119", "fire_r15"),        # smoke out of a door crack
    ("楼下砰的一声，我家窗户玻璃全震碎了", "119", "explosion_r15"),                # a bang that shatters windows
    ("他手腕让玻璃割了，血像喷泉一样往外滋", "120", "bleeding_r15"),              # blood that spurts
    ("我爸吃着饭突然嘴歪了，右边胳膊举不起来", "120", "stroke_r15"),              # a mouth askew, an arm that will not rise
    ("老太太吃汤圆噎着了，一直扒拉喉咙", "120", "choking_r15"),                   # choking seen, not named
    ("菜市场有个醉汉手里拎着家伙追着人跑", "110", "weapon_r15"),                  # a weapon called 家伙
    ("挖沟的时候土滑下来，把一个师傅埋到腰了", "119", "trapped_r15"),             # buried to the waist
    ("停车场一辆车里锁着个娃，太阳底下晒着", "119", "trapped_r15"),               # a child locked in a car
    ("河水涨得太快，有个人抱着树杈子在水中间", "120", "in_water_r15"),            # clinging on in a torrent
])
def test_a_new_sentence_of_each_round_15_family_is_critical_with_its_line(seed_clf, text, line, family):
    s = seed_clf.suggest(text)
    assert s.urgency == "critical" and s.handover == line, (s.urgency, s.handover, s.dangers)
    assert family in {d["sign"] for d in s.dangers}


@pytest.mark.parametrize("text", [
    "这条路的路基往下沉，车开过去一颠一颠的",                          # a road that sinks is no drowning
    "卫生间天花板裂了个大口子，一直往下掉渣",                          # a ceiling's 大口子 is no wound
    "我车窗被人砸了，座位上全是玻璃碴，包也没了",                      # a smashed window's 玻璃碴 is no weapon
    "总有人扔烟头在楼道里，说了也不听",                                # 烟头 is no smoke
    "广告布被风吹开了，就剩一根绳子还连着了",                          # 连着了 is no fire
    "楼道的煤气管子生锈了，现在闻不到什么味道，想找人换一下",          # a gas fitting with no smell
    "隔壁饭馆炒辣椒，呛得跟着火了似的",                                # a simile
    "前年冬天有人在这掉过冰窟窿，建议立个警示牌",                      # a past mishap, a suggestion
    "网上说荔枝和海鲜一起吃会中毒，是真的吗",                          # a rumour asked about
    "银行只开一个窗口，排队排得我快憋死了",                            # hyperbole
    "我家猫钻到空调外机后面出不来了，一直叫",                          # a pet
    "楼道里扔着一把生锈的旧菜刀，看着吓人",                            # a rusty old knife lying about
    "楼上小孩打游戏一直喊要杀了你，吵得睡不着",                        # a game
])
def test_look_alikes_of_round_15_are_not_critical(seed_clf, text):
    s = seed_clf.suggest(text)
    assert s.urgency != "critical", (s.dangers, s.urgency_reasons)


@pytest.mark.parametrize("text, sign", [
    ("前面那辆车着火了，堵得我快憋死了", "fire"),                       # hyperbole beside a real fire
    ("有人晕了一下已经醒了，可头上一直流血止不住", "bleeding"),          # came round, but bleeding now
])
def test_a_look_alike_phrase_clears_only_its_own_word_not_a_danger_beside_it(seed_clf, text, sign):
    s = seed_clf.suggest(text)
    assert s.urgency == "critical" and sign in {d["sign"] for d in s.dangers}, (s.dangers, s.urgency_reasons)
